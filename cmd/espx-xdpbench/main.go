// Command espx-xdpbench measures afxdp on a veth pair between two network
// namespaces that it creates and removes: rx-drop (receive and recycle),
// l2fwd (swap MACs, send back) and, as the kernel-only baseline, an XDP
// program that swaps MACs and returns XDP_TX, all in one run.
//
// Traffic comes from the kernel itself (BPF_PROG_RUN in live-frame mode,
// an XDP_TX loop on the generator's device, pinned to one CPU); the Go
// worker runs on the other CPU. Frames sent back are counted and dropped by
// an XDP program on the generator's device. It needs root.
//
//	espx-xdpbench [-seconds 5] [-size 64] [-runs 3]
package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net"
	"os/exec"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/espx/espx/afxdp"
)

var (
	seconds = flag.Float64("seconds", 5, "measuring time per run")
	size    = flag.Int("size", 64, "frame size on the wire, with FCS")
	runs    = flag.Int("runs", 3, "runs per mode; the median is reported")
	genCPU  = flag.Int("gen-cpu", 1, "CPU for the generator")
	workCPU = flag.Int("worker-cpu", 0, "CPU for the AF_XDP worker")
	busy    = flag.Bool("busy", true, "busy-poll (false: poll() when idle)")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

type ns struct{ name string }

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %v: %w: %s", args, err, out)
	}
	return nil
}

// in runs fn on a thread inside namespace n, pinned to cpu (if >= 0).
func (n ns) in(cpu int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, _ := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		defer unix.Close(orig)
		fd, err := unix.Open("/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err != nil {
			errc <- err
			return
		}
		var mask, all unix.CPUSet
		_ = unix.SchedGetaffinity(0, &all)
		if cpu >= 0 {
			mask.Set(cpu)
			_ = unix.SchedSetaffinity(0, &mask)
		}
		err = fn()
		_ = unix.SchedSetaffinity(0, &all)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func run() error {
	var b [3]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	gen, dut := ns{"espx-xdpbench-" + tag + "-g"}, ns{"espx-xdpbench-" + tag + "-d"}
	for _, n := range []ns{gen, dut} {
		if err := ip("netns", "add", n.name); err != nil {
			return err
		}
		defer ip("netns", "del", n.name)
	}
	if err := ip("-n", gen.name, "link", "add", "gen0", "type", "veth", "peer", "name", "dut0", "netns", dut.name); err != nil {
		return err
	}
	for _, c := range [][]string{{"-n", gen.name, "link", "set", "gen0", "up"}, {"-n", dut.name, "link", "set", "dut0", "up"}} {
		if err := ip(c...); err != nil {
			return err
		}
	}
	var genIdx, dutIdx int
	var genMAC, dutMAC net.HardwareAddr
	if err := gen.in(-1, func() error {
		i, err := net.InterfaceByName("gen0")
		genIdx, genMAC = i.Index, i.HardwareAddr
		return err
	}); err != nil {
		return err
	}
	if err := dut.in(-1, func() error {
		i, err := net.InterfaceByName("dut0")
		dutIdx, dutMAC = i.Index, i.HardwareAddr
		return err
	}); err != nil {
		return err
	}

	// On gen0: count and drop what comes back; the generator program.
	counter, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return err
	}
	defer counter.Close()
	sink, err := loadXDP("sink", asm.Instructions{
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, counter.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"), // XDP_DROP
		asm.Return(),
	})
	if err != nil {
		return err
	}
	defer sink.Close()
	txProg, err := loadXDP("gen_tx", asm.Instructions{asm.Mov.Imm(asm.R0, 3), asm.Return()}) // XDP_TX
	if err != nil {
		return err
	}
	defer txProg.Close()
	var sinkLink link.Link
	if err := gen.in(-1, func() error {
		sinkLink, err = link.AttachXDP(link.XDPOptions{Program: sink, Interface: genIdx, Flags: link.XDPDriverMode})
		return err
	}); err != nil {
		return err
	}
	defer sinkLink.Close()

	frame := make([]byte, *size-4)
	copy(frame, dutMAC)
	copy(frame[6:], genMAC)
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	ipHdr := frame[14:34]
	ipHdr[0], ipHdr[8], ipHdr[9] = 0x45, 64, 50
	binary.BigEndian.PutUint16(ipHdr[2:], uint16(len(frame)-14))
	copy(ipHdr[12:], []byte{198, 51, 100, 1})
	copy(ipHdr[16:], []byte{192, 0, 2, 1})
	binary.BigEndian.PutUint32(frame[34:], 0x1001)

	sumCounter := func() uint64 {
		var vals []uint64
		if err := counter.Lookup(uint32(0), &vals); err != nil {
			return 0
		}
		var s uint64
		for _, v := range vals {
			s += v
		}
		return s
	}
	// generate runs the generator until stop is closed.
	generate := func(stop <-chan struct{}, done *sync.WaitGroup) {
		defer done.Done()
		_ = gen.in(*genCPU, func() error {
			md := struct{ Data, DataEnd, DataMeta, Ingress, RxQueue, Egress uint32 }{DataEnd: uint32(len(frame)), Ingress: uint32(genIdx)}
			for {
				select {
				case <-stop:
					return nil
				default:
				}
				if _, err := txProg.Run(&ebpf.RunOptions{Data: frame, Repeat: 1 << 20, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, Context: &md, BatchSize: 64}); err != nil {
					log.Printf("generator: %v", err)
					return err
				}
			}
		})
	}

	fmt.Printf("veth, copy mode, %d-byte frames, %.0f s per run, median of %d; generator on CPU %d, worker on CPU %d, busy-poll %v\n",
		*size, *seconds, *runs, *genCPU, *workCPU, *busy)
	for _, mode := range []string{"rx-drop", "l2fwd", "xdp-tx"} {
		var results []float64
		var extra string
		for range *runs {
			mpps, note, err := measure(mode, dut, dutIdx, generate, sumCounter)
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			results = append(results, mpps)
			extra = note
		}
		sort.Float64s(results)
		fmt.Printf("%-8s %6.3f Mpps  (runs: %v) %s\n", mode, results[len(results)/2], fmtRuns(results), extra)
	}
	return nil
}

func fmtRuns(r []float64) string {
	s := ""
	for i, v := range r {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.3f", v)
	}
	return s
}

func loadXDP(name string, ins asm.Instructions) (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: ins})
}

// measure runs one mode for the configured time and returns Mpps.
func measure(mode string, dut ns, dutIdx int, generate func(<-chan struct{}, *sync.WaitGroup), returned func() uint64) (float64, string, error) {
	window := time.Duration(*seconds * float64(time.Second))
	stop := make(chan struct{})
	var wg sync.WaitGroup

	if mode == "xdp-tx" {
		// Swap MACs and bounce, all in the kernel.
		prog, err := loadXDP("bounce", asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
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
			asm.Mov.Imm(asm.R0, 3),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"),
			asm.Return(),
		})
		if err != nil {
			return 0, "", err
		}
		defer prog.Close()
		var l link.Link
		if err := dut.in(-1, func() error {
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: dutIdx, Flags: link.XDPDriverMode})
			return err
		}); err != nil {
			return 0, "", err
		}
		defer l.Close()
		wg.Add(1)
		go generate(stop, &wg)
		time.Sleep(300 * time.Millisecond)
		r0 := returned()
		time.Sleep(window)
		r1 := returned()
		close(stop)
		wg.Wait()
		return float64(r1-r0) / window.Seconds() / 1e6, "", nil
	}

	u, err := afxdp.NewUMEM(afxdp.UMEMConfig{FrameSize: 2048, NumFrames: 8192})
	if err != nil {
		return 0, "", err
	}
	defer u.Close()
	p, err := afxdp.NewProgram(afxdp.ProgramConfig{Side: afxdp.Unprotected})
	if err != nil {
		return 0, "", err
	}
	defer p.Close()
	var s *afxdp.Socket
	var am afxdp.AttachMode
	if err := dut.in(-1, func() error {
		if am, err = p.Attach(dutIdx); err != nil {
			return err
		}
		s, err = afxdp.NewSocket(u, dutIdx, 0, afxdp.SocketConfig{})
		return err
	}); err != nil {
		return 0, "", err
	}
	defer s.Close()
	s.Refill()
	if err := p.SetSocket(s); err != nil {
		return 0, "", err
	}

	var count atomic.Uint64
	var working atomic.Bool
	working.Store(true)
	var ww sync.WaitGroup
	ww.Add(1)
	go func() {
		defer ww.Done()
		runtime.LockOSThread()
		var mask unix.CPUSet
		mask.Set(*workCPU)
		_ = unix.SchedSetaffinity(0, &mask)
		descs := make([]afxdp.Desc, 64)
		var n64 uint64
		for working.Load() {
			n := s.Receive(descs)
			if n == 0 {
				if !*busy {
					_, _ = s.Wait(10)
				}
				if mode == "l2fwd" {
					s.Kick()
					s.Complete()
				}
				continue
			}
			if mode == "rx-drop" {
				s.Recycle(descs[:n])
			} else {
				for _, d := range descs[:n] {
					f := u.Data(d)
					var tmp [6]byte
					copy(tmp[:], f[0:6])
					copy(f[0:6], f[6:12])
					copy(f[6:12], tmp[:])
				}
				sent := s.Transmit(descs[:n])
				u.Free(descs[sent:n])
				s.Refill()
			}
			n64 += uint64(n)
			count.Store(n64)
		}
	}()
	wg.Add(1)
	go generate(stop, &wg)
	time.Sleep(300 * time.Millisecond)
	c0, r0 := count.Load(), returned()
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	time.Sleep(window)
	c1, r1 := count.Load(), returned()
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	close(stop)
	wg.Wait()
	working.Store(false)
	ww.Wait()
	st, _ := s.Stats()
	cpu := float64(ru1.Utime.Nano()-ru0.Utime.Nano()+ru1.Stime.Nano()-ru0.Stime.Nano()) / float64(window.Nanoseconds()) * 100
	rate := float64(c1-c0) / window.Seconds() / 1e6
	note := fmt.Sprintf("[%s XDP, zero-copy %v, need_wakeup %v, process CPU %.0f%%]", am, s.ZeroCopy(), s.NeedWakeup(), cpu)
	if mode == "l2fwd" {
		back := float64(r1-r0) / window.Seconds() / 1e6
		note = fmt.Sprintf("%s returned to generator %.3f Mpps, tx wakeups %d, EAGAIN %d, ENOBUFS %d", note, back, st.TxWakeups, st.WakeupEAGAIN, st.WakeupENOBUFS)
		rate = back
	} else {
		note = fmt.Sprintf("%s socket drops: rx_dropped %d ring_full %d", note, st.Kernel.RxDropped, st.Kernel.RxRingFull)
	}
	if a := u.Accounting(); a.BadFrees != 0 {
		return 0, "", fmt.Errorf("accounting %+v", a)
	}
	return rate, note, nil
}
