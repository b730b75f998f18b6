// Command gwbench measures iperf3 TCP through an espx gateway pair against
// a strongSwan kernel-libipsec gateway pair, in one run, on the same
// topology, with the same cipher (AES-GCM-128 in ESP-in-UDP, which is all
// libipsec 5.9.8 speaks) and the same MTUs. It needs root, iperf3, ethtool
// and strongSwan (see ../shared/interop/strongswan).
//
//	go run ./bench/gwbench [-seconds 8] [-rounds 3] [-streams 1]
//	                       [-sswan-offloads off,on] [-baseline=true]
//	                       [-idle-wait 60s] [-idle-busy 20] [-v]
//
// # Topology
//
// Each measurement gets four fresh network namespaces, gwb-<random>-hostA,
// -gwA, -gwB and -hostB, removed right after it:
//
//	hostA eth0 ── prot gwA unprot ══ unprot gwB prot ── eth0 hostB
//	198.51.100.10   .1   192.0.2.1   192.0.2.2   203.0.113.1   203.0.113.10
//
// The protected links (hosts to gateways) have MTU 1400, the wire 1500:
// libipsec's TUN device has MTU 1400, and with 1400 on the hosts both
// tunnels carry the same 1400-byte inner packets (TCP MSS 1348, with
// timestamps) with no
// path MTU discovery in play. espx needs checksum and segmentation offloads
// off on every veth (its XDP program must see MTU-sized frames with their
// checksums filled in); strongSwan is measured with the same setting and,
// by default, also with the veths' default offloads (see -sswan-offloads).
//
// espx: the gateways' kernels do not forward (ip_forward 0), so every
// packet from one host to the other went through espxd, which runs one
// worker per gateway (one queue per veth) from a static configuration: an
// AES-GCM-128 SA each way with UDP encapsulation and protect policies.
// strongSwan: the gateways' kernels forward; charon (kernel-libipsec) in
// each gateway negotiates an aes128gcm16 CHILD_SA with a PSK through the
// interop scripts; the gateways have no route to the other side's network
// except the one through the tunnel, so nothing passes in the clear. After
// each iperf3 run the harness checks that the gateways encrypted at least
// as many bytes as iperf3 delivered. The baseline (-baseline) is the same
// topology with offloads off and no IPsec: the gateways' kernels route,
// which shows what the hosts and veths alone allow on this machine.
//
// # Runs
//
// Each round measures every system (espx, each strongSwan variant, the
// baseline), each in both directions (hostA to hostB, then -R), for
// -seconds each; the order of the systems alternates
// from round to round so that a drift in the background load does not
// favour one. Before each measurement the harness waits (up to -idle-wait)
// for the host to be nearly idle, and records how busy it was. Reported:
// the receiver's rate per run, the median and range per system and
// direction, the CPU the gateway daemons used, and the ratio espx over
// strongSwan.
//
// Everything the harness makes (namespaces by name, processes by PID,
// its temporary directory) is removed when it ends, on error and on
// SIGINT or SIGTERM too. Children run in their own process group so that
// a Ctrl-C reaches only the harness, which then tears down in order.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/espx/espx/bench/internal/harness"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	seconds       int
	rounds        int
	streams       int
	sswanOffloads []bool // for each entry, a strongSwan variant with veth offloads on (true) or off
	idleWait      time.Duration
	idleBusy      float64
	sswanDir      string
	baseline      bool
	verbose       bool
}

func main() {
	var o options
	var offl string
	flag.IntVar(&o.seconds, "seconds", 8, "iperf3 duration of each run, in seconds")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every system both ways")
	flag.IntVar(&o.streams, "streams", 1, "iperf3 parallel streams (-P)")
	flag.StringVar(&offl, "sswan-offloads", "off,on", "strongSwan variants: veth offloads off (as espx needs), on (veth defaults), or both")
	flag.DurationVar(&o.idleWait, "idle-wait", 60*time.Second, "wait up to this long before each measurement for the host to be idle")
	flag.Float64Var(&o.idleBusy, "idle-busy", 20, "idle means at most this many percent of all CPUs busy over a second")
	flag.StringVar(&o.sswanDir, "sswan", "", "directory of the strongSwan interop scripts (default: ../shared/interop/strongswan from the module root)")
	flag.BoolVar(&o.baseline, "baseline", true, "also measure the topology without IPsec (kernel routing, offloads off)")
	flag.BoolVar(&o.verbose, "v", false, "show the commands run")
	flag.Parse()
	for _, s := range strings.Split(offl, ",") {
		switch strings.TrimSpace(s) {
		case "off":
			o.sswanOffloads = append(o.sswanOffloads, false)
		case "on":
			o.sswanOffloads = append(o.sswanOffloads, true)
		case "":
		default:
			fmt.Fprintf(os.Stderr, "gwbench: -sswan-offloads: %q is neither off nor on\n", s)
			os.Exit(2)
		}
	}
	if o.seconds < 1 || o.rounds < 1 || o.streams < 1 {
		fmt.Fprintln(os.Stderr, "gwbench: -seconds, -rounds and -streams must be at least 1")
		os.Exit(2)
	}

	b := &bench{opt: o, Runner: harness.Runner{Prog: "gwbench", Verbose: o.verbose}}
	harness.Run("gwbench", b.run, b.Teardown)
}

// bench holds the run's state and the undo list of everything it made.
type bench struct {
	opt      options
	dir      string // temporary directory: binaries, configurations, charon state
	espxd    string
	espxctl  string
	sswanDir string
	harness.Undo
	harness.Runner
	results     []result
	sswanSerial int
}

func (b *bench) run(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: creates network namespaces, veths and gateway daemons")
	}
	for _, c := range []string{"ip", "ethtool", "iperf3", "go", "swanctl", "/usr/lib/ipsec/charon"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("needs %s: %w", c, err)
		}
	}
	dir, err := os.MkdirTemp("", "gwbench-")
	if err != nil {
		return err
	}
	b.dir = dir
	b.AtExit(func() { os.RemoveAll(dir) })
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	b.sswanDir = b.opt.sswanDir
	if b.sswanDir == "" {
		b.sswanDir = filepath.Join(root, "..", "shared", "interop", "strongswan")
	}
	if _, err := os.Stat(filepath.Join(b.sswanDir, "sswan-peer-up.sh")); err != nil {
		return fmt.Errorf("strongSwan interop scripts: %w", err)
	}
	if err := b.build(ctx, root); err != nil {
		return err
	}

	systems := []system{{kind: espx}}
	for _, on := range b.opt.sswanOffloads {
		systems = append(systems, system{kind: strongswan, offloads: on})
	}
	if b.opt.baseline {
		systems = append(systems, system{kind: plain})
	}
	fmt.Printf("gwbench %s: %d rounds, iperf3 TCP %d s, %d stream(s), AES-GCM-128 ESP in UDP, inner MTU %d; %s\n",
		time.Now().Format(time.DateTime), b.opt.rounds, b.opt.seconds, b.opt.streams, lanMTU, cpuModel())
	for r := 1; r <= b.opt.rounds; r++ {
		order := systems
		if r%2 == 0 { // alternate the order, so that neither side always goes first
			order = make([]system, len(systems))
			for i, s := range systems {
				order[len(systems)-1-i] = s
			}
		}
		for _, s := range order {
			if err := b.measure(ctx, r, s); err != nil {
				return fmt.Errorf("round %d, %s: %w", r, s, err)
			}
		}
	}
	report(os.Stdout, b.results, systems)
	return nil
}

// measure builds a fresh topology, starts system s in it, runs iperf3
// both ways and removes everything again.
func (b *bench) measure(ctx context.Context, round int, s system) error {
	mark := b.Mark()
	defer b.PopTo(mark)
	busy := b.waitIdle(ctx)
	tp, err := b.newTopo(ctx, s)
	if err != nil {
		return err
	}
	var gw gateways
	switch s.kind {
	case espx:
		gw, err = b.startEspx(ctx, tp)
	case strongswan:
		gw, err = b.startSswan(ctx, tp)
	case plain:
		gw = routing{}
	}
	if err != nil {
		return err
	}
	for _, reverse := range []bool{false, true} {
		res, err := b.iperf(ctx, tp, gw, reverse)
		if err != nil {
			return err
		}
		res.round, res.sys, res.busyBefore = round, s, busy
		b.results = append(b.results, res)
		fmt.Printf("  round %d  %-26s %-13s %6.0f Mbit/s  retr %6d  mss %d  gw CPU %3.0f%% / %3.0f%%  iperf3 CPU %3.0f%% / %3.0f%%  host busy %3.0f%% (before %2.0f%%)\n",
			round, s, res.direction(), res.mbps, res.retransmits, res.mss, res.gwCPU[0], res.gwCPU[1],
			res.iperfCPU[0], res.iperfCPU[1], res.hostBusy, busy)
	}
	return gw.stop()
}

// routing is the baseline's "gateway pair": the kernels of gwA and gwB,
// which need no starting or stopping.
type routing struct{}

func (routing) pids() [2]int                                  { return [2]int{} }
func (routing) encrypted(ctx context.Context) (uint64, error) { return 0, nil }
func (routing) stop() error                                   { return nil }

// moduleRoot is the directory of the go.mod the harness runs in.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run gwbench inside the espx module (go run ./bench/gwbench)")
	}
	return filepath.Dir(gomod), nil
}

// build compiles espxd and espxctl into the temporary directory.
func (b *bench) build(ctx context.Context, root string) error {
	b.espxd, b.espxctl = filepath.Join(b.dir, "espxd"), filepath.Join(b.dir, "espxctl")
	for _, c := range []struct{ out, pkg string }{{b.espxd, "./cmd/espxd"}, {b.espxctl, "./cmd/espxctl"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", c.out, c.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", c.pkg, err, out)
		}
	}
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
