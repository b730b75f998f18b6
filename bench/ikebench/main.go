package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"github.com/espx/espx/bench/internal/harness"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// mode is where the responder and the initiators run.
type mode int

const (
	pinned mode = iota // responder on CPU 0, initiators on CPU 1
	shared             // both free on all CPUs
)

func (m mode) String() string {
	if m == pinned {
		return "pinned"
	}
	return "shared"
}

// kind is a responder implementation.
type kind int

const (
	espx kind = iota
	strongswan
)

func (k kind) String() string {
	if k == espx {
		return "espx"
	}
	return "strongSwan"
}

type options struct {
	initiators int
	inflight   int
	rounds     int
	warmup     time.Duration
	window     time.Duration
	modes      []mode
	systems    []kind
	idleWait   time.Duration
	idleBusy   float64
	verbose    bool
	keep       bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "responder" {
		if err := runResponder(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ikebench responder:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var modes, systems string
	flag.IntVar(&o.initiators, "initiators", 250, "initiator addresses (198.51.100.1 up), each its own IKE daemon, at most 254")
	flag.IntVar(&o.inflight, "inflight", 1, "IKE SAs each initiator keeps in negotiation")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds; each measures every mode and responder once")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "load before counting starts")
	flag.DurationVar(&o.window, "window", 5*time.Second, "counting window")
	flag.StringVar(&modes, "modes", "pinned,shared", "pinned (responder CPU 0, initiators CPU 1), shared (both anywhere), or both")
	flag.StringVar(&systems, "systems", "espx,strongswan", "responders to measure")
	flag.DurationVar(&o.idleWait, "idle-wait", 5*time.Second, "wait up to this long before each measurement for the host to be idle")
	flag.Float64Var(&o.idleBusy, "idle-busy", 25, "idle means at most this many percent of all CPUs busy over a second")
	flag.BoolVar(&o.verbose, "v", false, "show commands, and log more in the responders")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (responder logs, charon's configuration)")
	flag.Parse()
	for _, s := range strings.Split(modes, ",") {
		switch strings.TrimSpace(s) {
		case "pinned":
			o.modes = append(o.modes, pinned)
		case "shared":
			o.modes = append(o.modes, shared)
		default:
			fmt.Fprintf(os.Stderr, "ikebench: -modes: %q is neither pinned nor shared\n", s)
			os.Exit(2)
		}
	}
	for _, s := range strings.Split(systems, ",") {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "espx":
			o.systems = append(o.systems, espx)
		case "strongswan":
			o.systems = append(o.systems, strongswan)
		default:
			fmt.Fprintf(os.Stderr, "ikebench: -systems: %q is neither espx nor strongswan\n", s)
			os.Exit(2)
		}
	}
	if o.initiators < 1 || o.initiators > 254 || o.inflight < 1 || o.rounds < 1 || o.window < time.Second {
		fmt.Fprintln(os.Stderr, "ikebench: -initiators 1..254, -inflight and -rounds at least 1, -window at least 1s")
		os.Exit(2)
	}

	b := &bench{opt: o, Runner: harness.Runner{Prog: "ikebench", Verbose: o.verbose}}
	harness.Run("ikebench", b.run, b.Teardown)
}

// bench holds the run's state and the undo list of everything it made.
type bench struct {
	opt  options
	dir  string // temporary directory: charon state, responder logs
	self string // this executable, run again as the espx responder
	psk  []byte
	tp   *topo
	harness.Undo
	harness.Runner
	results []result
}

func (b *bench) run(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: creates network namespaces and runs charon")
	}
	for _, c := range []string{"ip", "taskset", "unshare", "swanctl", charonPath} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("needs %s: %w", c, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("kernel-libipsec needs /dev/net/tun: %w", err)
	}
	if runtime.NumCPU() < 2 && slices.Contains(b.opt.modes, pinned) {
		return errors.New("pinned mode needs two CPUs")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b.self = self
	dir, err := os.MkdirTemp("", "ikebench-")
	if err != nil {
		return err
	}
	b.dir = dir
	b.AtExit(func() {
		if b.opt.keep {
			fmt.Fprintln(os.Stderr, "ikebench: kept", dir)
			return
		}
		os.RemoveAll(dir)
	})
	b.psk = make([]byte, 32)
	rand.Read(b.psk)
	// Whatever the mode, the harness ends as it started: on every CPU.
	b.AtExit(func() { pinSelf(allCPUs()) })

	if b.tp, err = b.newTopo(ctx); err != nil {
		return err
	}
	fmt.Printf("ikebench %s: %d rounds, %d initiators x %d in flight, warm-up %v, window %v; IKE aes128gcm16-prfsha256-x25519, ESP aes128gcm16 (UDP-encapsulated); %s\n",
		time.Now().Format(time.DateTime), b.opt.rounds, b.opt.initiators, b.opt.inflight, b.opt.warmup, b.opt.window, cpuModel())
	for r := 1; r <= b.opt.rounds; r++ {
		for mi, m := range b.opt.modes {
			order := b.opt.systems
			if (r+mi)%2 == 0 { // alternate which responder goes first
				order = make([]kind, len(b.opt.systems))
				for i, s := range b.opt.systems {
					order[len(order)-1-i] = s
				}
			}
			for _, s := range order {
				if err := b.measure(ctx, r, m, s); err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", r, m, s, err)
				}
			}
		}
	}
	report(os.Stdout, b.results, b.opt)
	return nil
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	n, model := 0, ""
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			model = strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("%d x %s", n, model)
}
