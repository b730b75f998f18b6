// Command espx-xdpbench measures afxdp on veth pairs between two network
// namespaces that it creates and removes: rx-drop (receive and recycle),
// l2fwd (swap MACs, send back), espx (espx's data plane worker encrypts
// and forwards, issue 5) and, as the kernel-only baseline, an XDP program
// that swaps MACs and returns XDP_TX, all in one run. It needs root and
// two CPUs.
//
//	espx-xdpbench [-modes rx-drop,l2fwd,espx,xdp-tx] [-placements split,one-core]
//	              [-waits busy,poll,yield] [-size 64] [-loss 0.005]
//	              [-trial 1s] [-seconds 2s] [-runs 5] [-rates 1,2,3] [-v]
//
// # Traffic
//
// The generator is the kernel: BPF_PROG_RUN in live-frame mode runs an
// XDP_TX program on the generator's veth, on a thread pinned to -gen-cpu;
// the program spaces the frames evenly at the rate asked for (see
// generator.go). Frames are 64-byte IPv4 ESP packets between documentation
// addresses, or for espx IPv4 UDP packets to be encrypted. Frames sent
// back are counted and dropped on the generator's veth, by a tcx program
// for l2fwd and an XDP program for the XDP_TX baseline (see load). espx
// sends its ESP packets out of a second veth pair, the gateway's
// unprotected side, where a tcx program counts and drops them, like
// l2fwd's, and tells the ESP frames it expects from anything else; before
// espx is measured, a sample of its output is captured and decrypted (see
// espx.go).
//
// espx differs from l2fwd in three ways that cost its CPU: it transmits
// on another socket and device than it receives on (two sockets on one
// UMEM), it runs the whole outbound path per packet (SPD lookup,
// AES-GCM-128 encryption in place, route, counters), and the frames it
// sends are longer (64-byte frames become 118-byte ESP frames, which the
// copy-mode transmit copies into skbs).
//
// # What is reported
//
// For each configuration, first -runs unpaced runs (the generator as fast
// as it goes): if they lose no more than -loss, the DUT took everything
// the generator could offer and the figure is marked "generator-limited".
// Otherwise the highest target rate at which no more than -loss of the
// frames are lost (RFC 2544's throughput, with a tolerance for a shared
// host), found by a search on the target with -trial runs, and then -runs
// runs of -seconds at that rate: the median delivered rate and its range.
// The search is on the target, and judged by the loss measured, because
// the paced generator reaches only about 90-95 % of its target here (its
// vCPU is preempted). If the runs at the rate found lose too much, the
// rate is lowered by 5 % and the runs repeated, up to -step-downs times;
// if they still lose too much, the configuration is reported "not
// confirmed", with no figure. -rates replaces all this with one trial per given rate,
// to look at a curve by hand.
//
// # Where the kernel's share runs
//
// Receiving into an AF_XDP socket in copy mode is work for the kernel:
// veth's NAPI runs the XDP program and copies each frame into the UMEM.
// -placements chooses where:
//
//   - split (default): in softirq on the generator's CPU, right after each
//     batch the generator sends (veth's own behaviour: NAPI runs on the
//     CPU that transmitted into the pair). The worker's CPU does the
//     worker's work and, in l2fwd and espx, the copy-mode transmit
//     (sendto) and the generator side's receive of the frames sent (see
//     load).
//   - one-core: in veth's NAPI thread pinned to the worker's CPU, so that
//     the worker's CPU carries everything the DUT does, as on a NIC whose
//     interrupts go to the worker's core. On veth this measures the
//     scheduler more than afxdp: the NAPI thread and the worker take turns
//     on the CPU through the scheduler, and veth's 256-frame ring in front
//     of the NAPI overflows while the worker has the CPU (those losses
//     show in no socket counter). A NIC's softirq preempts the worker at
//     once instead.
//
// For the XDP_TX baseline the same placements put the DUT veth's NAPI (the
// program) on the generator's CPU or alone on the worker's.
//
// Every namespace and link it makes is removed by name at the end, on
// error, and on SIGINT or SIGTERM; -timeout bounds the whole run. If it is
// killed with SIGKILL, its XDP and tcx programs go with it (bpf links), and
// it has printed the two namespaces to delete by hand. It starts no
// process but ip(8) and sh(1), and waits for each.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

type options struct {
	modes, placements, waits []string

	size                int
	loss, resolution    float64
	trial, seconds      time.Duration
	runs, steps         int
	stepDowns           int
	genCPU, workerCPU   int
	ring, frames, batch int
	timeout             time.Duration
	maxOthers, maxWait  float64
	retries             int
	quietWait           time.Duration
	rps                 bool
	verbose             bool
	// rates, when set, replaces the search: one trial at each of these
	// targets, in order, printed as they run.
	rates []float64
}

func parseFlags() (options, error) {
	var o options
	modes := flag.String("modes", "rx-drop,l2fwd,espx,xdp-tx", "what to measure, in order: rx-drop, l2fwd, espx, xdp-tx")
	placements := flag.String("placements", "split", "where the DUT veth's NAPI runs: split (generator's CPU), one-core (worker's CPU)")
	waits := flag.String("waits", "busy", "what the worker does when its RX ring is empty: busy, poll, yield")
	flag.IntVar(&o.size, "size", 64, "frame size on the wire, with FCS")
	flag.Float64Var(&o.loss, "loss", 0.005, "loss tolerated at the reported rate, as a fraction (0.005: FD.io CSIT's PDR)")
	flag.Float64Var(&o.resolution, "resolution", 0.02, "stop bisecting when the interval is this fraction of its top")
	flag.DurationVar(&o.trial, "trial", time.Second, "length of each search trial")
	flag.DurationVar(&o.seconds, "seconds", 2*time.Second, "length of each confirmation run")
	flag.IntVar(&o.runs, "runs", 5, "confirmation runs per configuration; their median is reported")
	flag.IntVar(&o.steps, "steps", 10, "bisection steps at most")
	// l2fwd on veth has a cliff: just above its loss-free rate a run
	// either delivers everything or collapses to about 60 % for the rest
	// of the run, so the search can end on a rate that passed one
	// trial by luck; six steps of 5 % reach 74 % of it.
	flag.IntVar(&o.stepDowns, "step-downs", 6, "times the rate found is lowered by 5 % when the runs at it lose too much")
	flag.IntVar(&o.genCPU, "gen-cpu", 1, "CPU for the generator")
	flag.IntVar(&o.workerCPU, "worker-cpu", 0, "CPU for the AF_XDP worker")
	// 8192 rather than afxdp's 2048: on this shared 2-vCPU host the
	// worker's vCPU stalls now and then for a millisecond or so, and
	// 2048 frames of fill ring last 0.15-0.3 ms at 7-14 Mpps: rx-drop then
	// lost 1-6 % to fill-ring underruns, not for want of throughput.
	flag.IntVar(&o.ring, "ring", 8192, "size of each AF_XDP ring")
	flag.IntVar(&o.frames, "frames", 16384, "UMEM frames")
	flag.IntVar(&o.batch, "batch", 64, "worker batch")
	flag.Float64Var(&o.maxOthers, "others", 0.1, "before each trial, wait (up to -quiet-wait) until other threads on the host use no more than this fraction of a CPU")
	flag.Float64Var(&o.maxWait, "max-wait", 0.02, "run a trial again when a thread that has its CPU to itself waited for it more than this fraction of the time")
	flag.IntVar(&o.retries, "retries", 3, "times a disturbed trial is run again")
	flag.DurationVar(&o.quietWait, "quiet-wait", 15*time.Second, "before each trial, wait up to this long for other tasks to leave the CPUs idle")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.BoolVar(&o.rps, "rps", false, "free the frames l2fwd sends back on the generator's CPU (RPS), not the worker's")
	flag.BoolVar(&o.verbose, "v", false, "print every trial")
	rates := flag.String("rates", "", "instead of searching, run one -trial at each of these target rates (Mpps, comma-separated; 0: unpaced), in order, and print them")
	flag.Parse()
	if *rates != "" {
		for _, f := range strings.Split(*rates, ",") {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil || v < 0 {
				return o, fmt.Errorf("-rates: bad rate %q", f)
			}
			o.rates = append(o.rates, v*1e6)
		}
		o.verbose = true
	}
	o.modes = strings.Split(*modes, ",")
	o.placements = strings.Split(*placements, ",")
	o.waits = strings.Split(*waits, ",")
	for _, m := range o.modes {
		if m != "rx-drop" && m != "l2fwd" && m != "espx" && m != "xdp-tx" {
			return o, fmt.Errorf("unknown mode %q", m)
		}
	}
	for _, p := range o.placements {
		if p != "split" && p != "one-core" {
			return o, fmt.Errorf("unknown placement %q", p)
		}
	}
	for _, w := range o.waits {
		if w != "busy" && w != "poll" && w != "yield" {
			return o, fmt.Errorf("unknown wait %q", w)
		}
	}
	switch {
	case o.size < 60 || o.size > 1518:
		return o, fmt.Errorf("-size %d: want 60..1518", o.size)
	case slices.Contains(o.modes, "espx") && o.size > maxEspxSize:
		// Larger inner packets would not fit the unprotected link's MTU
		// once encapsulated: the worker would fragment them.
		return o, fmt.Errorf("-size %d: espx takes at most %d", o.size, maxEspxSize)
	case o.genCPU == o.workerCPU || o.genCPU < 0 || o.workerCPU < 0:
		return o, errors.New("-gen-cpu and -worker-cpu must be two different CPUs")
	case o.runs < 1 || o.steps < 1 || o.trial <= 0 || o.seconds <= 0 || o.timeout <= 0:
		return o, errors.New("-runs, -steps, -trial, -seconds and -timeout must be positive")
	case o.stepDowns < 0:
		return o, errors.New("-step-downs must not be negative")
	case o.batch < 1 || o.ring < 64 || o.frames < 2*o.ring:
		return o, errors.New("-batch must be positive, -ring at least 64, -frames at least twice -ring")
	}
	return o, nil
}

func main() {
	log.SetFlags(0)
	o, err := parseFlags()
	if err != nil {
		log.Fatal(err)
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, errors.New("-timeout passed"))
	defer cancel()
	// Two threads spin (generator, worker); leave Ps for the rest.
	runtime.GOMAXPROCS(max(4, runtime.GOMAXPROCS(0)))

	var b [3]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	topo, err := newTopology(tag, o.genCPU, o.workerCPU)
	if err != nil {
		return err
	}
	defer topo.cleanup()
	fmt.Fprintf(os.Stderr, "namespaces %s and %s (if killed: ip netns del <name>)\n", topo.genNS, topo.dutNS)

	bn := &bench{topo: topo, opts: o}
	if err := bn.load(); err != nil {
		return err
	}
	defer bn.close()

	var uts unix.Utsname
	_ = unix.Uname(&uts)
	fmt.Printf("espx-xdpbench: Linux %s, %d CPUs; veth, AF_XDP copy mode, native XDP, need_wakeup; %d-byte frames\n",
		unix.ByteSliceToString(uts.Release[:]), runtime.NumCPU(), o.size)
	fmt.Printf("generator on CPU %d, worker on CPU %d; rings %d, UMEM %d frames, worker batch %d\n",
		o.genCPU, o.workerCPU, o.ring, o.frames, o.batch)
	fmt.Printf("rate: highest with loss <= %.3g%% (search trials %v), then median [min-max] of %d runs of %v at that rate;\n",
		o.loss*100, o.trial, o.runs, o.seconds)
	fmt.Printf("a trial starts once other threads use at most %.0f%% of a CPU (waiting up to %v), and is run again (up to %d times) when the generator or worker waited more than %.1f%% of it for its CPU\n\n",
		o.maxOthers*100, o.quietWait, o.retries, o.maxWait*100)

	var results []result
	for _, c := range o.configs() {
		r, err := bn.runConfig(ctx, c)
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(strings.Fields(c.String()), " "), err)
		}
		if len(o.rates) > 0 {
			continue // the trials were printed as they ran
		}
		results = append(results, r)
		printResult(r, o)
	}
	if len(o.rates) > 0 {
		return nil
	}
	fmt.Println()
	printSummary(results, o)
	if bn.espCheck != "" {
		fmt.Println(bn.espCheck)
	}
	return nil
}

func (o options) configs() []config {
	var cs []config
	for _, m := range o.modes {
		for _, p := range o.placements {
			if m == "xdp-tx" {
				cs = append(cs, config{mode: m, placement: p, wait: "-"})
				continue
			}
			for _, w := range o.waits {
				cs = append(cs, config{mode: m, placement: p, wait: w})
			}
		}
	}
	return cs
}

func (b *bench) runConfig(ctx context.Context, c config) (result, error) {
	if b.opts.verbose {
		fmt.Printf("%s\n", c)
	}
	dt, undo, err := b.setupDUT(c)
	if err != nil {
		return result{}, err
	}
	if c.mode == "espx" {
		line, err := b.checkESP()
		if err != nil {
			return result{}, errors.Join(err, undo())
		}
		b.espCheck = line
		fmt.Printf("    %s\n", line)
	}
	// Nothing on the measured paths allocates; keep the collector from
	// stopping the worker in the middle of a trial anyway.
	runtime.GC()
	old := debug.SetGCPercent(-1)
	r, err := b.measure(ctx, c, dt)
	debug.SetGCPercent(old)
	if e := undo(); err == nil {
		err = e
	}
	return r, err
}

// load makes the generator's side. Frames that come back are counted in
// per-CPU counters and dropped:
//
//   - from the AF_XDP socket (skbs, copy mode), by a tcx ingress program
//     on the generator's veth, which has no XDP program then: veth hands
//     the skb to netif_rx, the backlog of the sending CPU (the worker's)
//     runs the program right after the sendto, and freeing the skb
//     completes the frame to the socket, as a NIC's TX completion would, on
//     the worker's CPU. With -rps the backlog is the generator's CPU's
//     instead; freeing skbs on another CPU costs about 1 us each there,
//     and the generator's CPU then runs out first.
//   - espx's ESP frames, from the unprotected side's socket, by a tcx
//     ingress program on the sink device (espSinkProgram), in the same
//     way; it counts the ESP frames it expects and anything else apart.
//   - from the XDP_TX baseline (xdp_frames, which veth only takes when the
//     peer has XDP), by an XDP program that setupDUT attaches for that
//     mode; its NAPI runs in softirq on the CPU that sent the frames back.
//
// (A NAPI thread on the generator's CPU would wait there for the
// generator's time slice, and veth's 256-frame ring in front of it
// overflows meanwhile.) The generator program is held in the dispatcher by
// the idle veth.
func (b *bench) load() (err error) {
	t := b.topo
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.sink, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1}); err != nil {
		return err
	}
	if b.xdpSink, err = loadXDP("sink", sinkProgram(b.sink, xdpDrop)); err != nil {
		return err
	}
	b.closers = append(b.closers, b.xdpSink.Close)
	tcSink, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "tc_sink", Type: ebpf.SchedCLS, License: "Dual MIT/GPL", Instructions: sinkProgram(b.sink, tcActShot)})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, tcSink.Close)
	if b.espSink, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}); err != nil {
		return err
	}
	b.closers = append(b.closers, b.espSink.Close)
	espLen, err := espFrameLen(b.opts.size)
	if err != nil {
		return err
	}
	espSink, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "esp_sink", Type: ebpf.SchedCLS, License: "Dual MIT/GPL", Instructions: espSinkProgram(b.espSink, espLen)})
	if err != nil {
		return fmt.Errorf("load ESP sink: %w", err)
	}
	b.closers = append(b.closers, espSink.Close)
	pace, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: uint32(unsafe.Sizeof(paceState{})), MaxEntries: 1})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, pace.Close)
	genTx, err := loadXDP("gen_tx", genProgram(pace))
	if err != nil {
		return fmt.Errorf("load generator program: %w", err)
	}
	b.closers = append(b.closers, genTx.Close)
	if b.bounce, err = loadXDP("bounce", bounceProgram()); err != nil {
		return err
	}
	b.closers = append(b.closers, b.bounce.Close)
	err = t.genThread.do(func() error {
		l, err := link.AttachTCX(link.TCXOptions{Program: tcSink, Interface: t.genIdx, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return fmt.Errorf("tcx: %w", err)
		}
		b.closers = append(b.closers, l.Close)
		if l, err = link.AttachTCX(link.TCXOptions{Program: espSink, Interface: t.sinkIdx, Attach: ebpf.AttachTCXIngress}); err != nil {
			return fmt.Errorf("tcx: %w", err)
		}
		b.closers = append(b.closers, l.Close)
		if l, err = link.AttachXDP(link.XDPOptions{Program: genTx, Interface: t.holdIdx, Flags: link.XDPDriverMode}); err != nil {
			return err
		}
		b.closers = append(b.closers, l.Close)
		return nil
	})
	if err != nil {
		return fmt.Errorf("attach generator programs: %w", err)
	}
	if b.opts.rps {
		for _, dev := range []string{t.genDev, t.sinkDev} {
			if err := ip("netns", "exec", t.genNS, "sh", "-c",
				fmt.Sprintf("echo %x > /sys/class/net/%s/queues/rx-0/rps_cpus", 1<<b.opts.genCPU, dev)); err != nil {
				return fmt.Errorf("RPS on %s: %w", dev, err)
			}
		}
	}
	b.gen = newGenerator(genTx, pace, t.genIdx, buildFrame(b.opts.size, t.dutMAC, t.genMAC))
	b.genUDP = newGenerator(genTx, pace, t.genIdx, buildUDPFrame(b.opts.size, t.dutMAC, t.genMAC))
	b.ksoftirqd = ksoftirqd(runtime.NumCPU())
	return nil
}

func (b *bench) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
	b.closers = nil
	if b.sink != nil {
		_ = b.sink.Close()
		b.sink = nil
	}
	b.espSink = nil // closed by its closer
}

const (
	xdpDrop   = 1
	xdpPass   = 2
	xdpTX     = 3
	tcActShot = 2
)

func loadXDP(name string, ins asm.Instructions) (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: ins})
}

// sinkProgram counts every frame in counter's one per-CPU slot and
// returns drop, the program type's verdict for dropping it.
func sinkProgram(counter *ebpf.Map, drop int32) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, counter.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, drop).WithSymbol("out"),
		asm.Return(),
	}
}

// bounceProgram swaps the Ethernet addresses and returns XDP_TX: l2fwd in
// the kernel.
func bounceProgram() asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R4, asm.R2, 0, asm.Word),
		asm.LoadMem(asm.R5, asm.R2, 6, asm.Word),
		asm.StoreMem(asm.R2, 0, asm.R5, asm.Word),
		asm.StoreMem(asm.R2, 6, asm.R4, asm.Word),
		asm.LoadMem(asm.R4, asm.R2, 4, asm.Half),
		asm.LoadMem(asm.R5, asm.R2, 10, asm.Half),
		asm.StoreMem(asm.R2, 4, asm.R5, asm.Half),
		asm.StoreMem(asm.R2, 10, asm.R4, asm.Half),
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	}
}
