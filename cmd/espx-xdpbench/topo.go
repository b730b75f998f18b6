package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// topology is what the benchmark creates: two namespaces, two veth pairs
// between them, and, in the generator's namespace, an idle veth pair that
// only holds the generator's XDP program attached (see generator.go). The
// first pair (gen, dut) carries the generator's frames to the DUT and, in
// l2fwd, back; for espx it is the gateway's protected side. The second
// (sink, esp) is espx's unprotected side: the DUT sends the ESP packets
// out of esp, and they are counted on sink; the other modes leave it idle.
// Every name carries a random tag, and cleanup removes exactly these, by
// name.
//
//	generator namespace               DUT namespace
//	  gen  ─────────────────────────  dut   (plain frames in; l2fwd's back)
//	  sink ─────────────────────────  esp   (espx: ESP out)
//	  hold ── holdPeer
type topology struct {
	tag                  string
	genNS, dutNS         string
	genDev, dutDev       string
	sinkDev, espDev      string
	holdDev, holdPeer    string
	genIdx, dutIdx       int
	sinkIdx, espIdx      int
	holdIdx              int
	genMAC, dutMAC       [6]byte
	sinkMAC, espMAC      [6]byte
	genThread, dutThread *nsThread

	undo []func() error // in creation order; cleanup runs them backwards
}

// ip runs iproute2's ip, bounded in time.
func ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newTopology creates the namespaces and links. On error it removes what
// it created before returning.
func newTopology(tag string, genCPU, workerCPU int) (t *topology, err error) {
	t = &topology{
		tag:   tag,
		genNS: "espx-xdpbench-" + tag + "-g", dutNS: "espx-xdpbench-" + tag + "-d",
		// Short names: NAPI threads are called napi/<dev>-<id>, and a
		// thread's name holds 15 characters.
		genDev: "xg" + tag, dutDev: "xd" + tag, holdDev: "xh" + tag, holdPeer: "xi" + tag,
		sinkDev: "xs" + tag, espDev: "xe" + tag,
	}
	defer func() {
		if err != nil {
			t.cleanup()
			t = nil
		}
	}()
	for _, n := range []string{t.genNS, t.dutNS} {
		if err := ip("netns", "add", n); err != nil {
			return t, err
		}
		t.undo = append(t.undo, func() error { return ip("netns", "del", n) })
	}
	if err := ip("-n", t.genNS, "link", "add", t.genDev, "type", "veth", "peer", "name", t.dutDev, "netns", t.dutNS); err != nil {
		return t, err
	}
	t.undo = append(t.undo, func() error { return ip("-n", t.genNS, "link", "del", t.genDev) })
	if err := ip("-n", t.genNS, "link", "add", t.holdDev, "type", "veth", "peer", "name", t.holdPeer); err != nil {
		return t, err
	}
	t.undo = append(t.undo, func() error { return ip("-n", t.genNS, "link", "del", t.holdDev) })
	if err := ip("-n", t.genNS, "link", "add", t.sinkDev, "type", "veth", "peer", "name", t.espDev, "netns", t.dutNS); err != nil {
		return t, err
	}
	t.undo = append(t.undo, func() error { return ip("-n", t.genNS, "link", "del", t.sinkDev) })
	// No IPv6 on the ESP pair: the kernel's neighbour and multicast
	// listener messages would otherwise reach the sink, which counts
	// everything that is not the expected ESP frame as an error.
	for _, c := range [][]string{
		{"netns", "exec", t.genNS, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/" + t.sinkDev + "/disable_ipv6"},
		{"netns", "exec", t.dutNS, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/" + t.espDev + "/disable_ipv6"},
		{"-n", t.genNS, "link", "set", t.genDev, "up"},
		{"-n", t.dutNS, "link", "set", t.dutDev, "up"},
		{"-n", t.genNS, "link", "set", t.sinkDev, "up"},
		{"-n", t.dutNS, "link", "set", t.espDev, "up"},
	} {
		if err := ip(c...); err != nil {
			return t, err
		}
	}
	if t.genThread, err = newNSThread(t.genNS, genCPU); err != nil {
		return t, err
	}
	t.undo = append(t.undo, func() error { t.genThread.close(); return nil })
	if t.dutThread, err = newNSThread(t.dutNS, workerCPU); err != nil {
		return t, err
	}
	t.undo = append(t.undo, func() error { t.dutThread.close(); return nil })
	if err := t.genThread.do(func() error {
		if t.genIdx, t.genMAC, err = linkInfo(t.genDev); err != nil {
			return err
		}
		if t.sinkIdx, t.sinkMAC, err = linkInfo(t.sinkDev); err != nil {
			return err
		}
		t.holdIdx, _, err = linkInfo(t.holdDev)
		return err
	}); err != nil {
		return t, err
	}
	if err := t.dutThread.do(func() error {
		if t.dutIdx, t.dutMAC, err = linkInfo(t.dutDev); err != nil {
			return err
		}
		t.espIdx, t.espMAC, err = linkInfo(t.espDev)
		return err
	}); err != nil {
		return t, err
	}
	return t, nil
}

// linkInfo looks a device up in the calling thread's namespace.
func linkInfo(name string) (int, [6]byte, error) {
	var mac [6]byte
	i, err := net.InterfaceByName(name)
	if err != nil {
		return 0, mac, err
	}
	copy(mac[:], i.HardwareAddr)
	return i.Index, mac, nil
}

// cleanup removes everything newTopology created, newest first, and
// reports every failure.
func (t *topology) cleanup() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		if err := t.undo[i](); err != nil {
			fmt.Fprintf(os.Stderr, "cleanup: %v\n", err)
		}
	}
	t.undo = nil
}

// nsThread is a goroutine locked to an OS thread that lives in one network
// namespace, pinned to one CPU, and runs the functions it is given. When
// it is closed the goroutine exits still locked, so the thread ends with
// it and never goes back to the runtime's pool from another namespace.
type nsThread struct {
	reqs chan func()
	done chan struct{}
	tid  int
}

func newNSThread(ns string, cpu int) (*nsThread, error) {
	t := &nsThread{reqs: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(t.done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err == nil && cpu >= 0 {
			err = pin(0, cpu)
		}
		if err == nil {
			err = quietThread()
		}
		t.tid = unix.Gettid()
		errc <- err
		if err != nil {
			return
		}
		for fn := range t.reqs {
			fn()
		}
	}()
	if err := <-errc; err != nil {
		<-t.done
		return nil, fmt.Errorf("thread in %s on CPU %d: %w", ns, cpu, err)
	}
	return t, nil
}

// do runs fn on the thread and returns its error.
func (t *nsThread) do(fn func() error) error {
	errc := make(chan error, 1)
	t.reqs <- func() { errc <- fn() }
	return <-errc
}

func (t *nsThread) close() {
	close(t.reqs)
	<-t.done
}

// quietThread blocks SIGURG, the signal the Go runtime preempts running
// goroutines with, on the calling (locked) thread: the generator's
// BPF_PROG_RUN would return EINTR part way through its frames, and the worker
// would be interrupted every 10 ms. The runtime then preempts these
// goroutines at function calls, which their loops make all the time.
func quietThread() error {
	var set unix.Sigset_t
	set.Val[(unix.SIGURG-1)/64] |= 1 << ((unix.SIGURG - 1) % 64)
	return unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
}

// pin restricts thread (0: the calling one) to cpu.
func pin(tid, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(tid, &set)
}

// setThreaded switches a device's NAPI between softirq and a kernel thread
// of its own (/sys/class/net/<dev>/threaded). sysfs shows the namespace of
// whoever mounted it, so this goes through ip netns exec, which mounts one
// for the namespace in a private mount namespace. The device needs NAPI,
// which veth has while an XDP program is attached.
func setThreaded(ns, dev string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return ip("netns", "exec", ns, "sh", "-c", "echo "+v+" > /sys/class/net/"+dev+"/threaded")
}

// napiThreads returns the PIDs of the NAPI kernel threads of dev
// (napi/<dev>-<napi id>, cut to 15 characters).
func napiThreads(dev string) ([]int, error) {
	prefix := "napi/" + dev + "-"
	if len(prefix) > 15 {
		return nil, fmt.Errorf("device name %q too long to find its NAPI threads", dev)
	}
	return kernelThreads(func(comm string) bool { return strings.HasPrefix(comm, prefix) })
}

// kernelThreads returns the PIDs of the kernel threads whose name match
// accepts.
func kernelThreads(match func(comm string) bool) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || !match(strings.TrimSpace(string(comm))) {
			continue
		}
		// Kernel threads are children of kthreadd (PID 2).
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:])); len(f) > 1 && f[1] == "2" {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// placeNAPI puts dev's NAPI in a kernel thread pinned to cpu, or, with
// cpu < 0, back in softirq context, where veth runs it on the CPU that
// transmitted into the pair. It returns the thread's PID (0 for softirq).
func placeNAPI(ns, dev string, cpu int) (int, error) {
	if err := setThreaded(ns, dev, cpu >= 0); err != nil {
		return 0, err
	}
	if cpu < 0 {
		return 0, nil
	}
	var pids []int
	var err error
	for range 50 { // the thread is created by the sysfs write; allow for a slow /proc
		if pids, err = napiThreads(dev); err != nil || len(pids) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return 0, err
	}
	if len(pids) != 1 {
		return 0, fmt.Errorf("NAPI threads of %s: found %v, want one", dev, pids)
	}
	if err := pin(pids[0], cpu); err != nil {
		return 0, fmt.Errorf("pin NAPI thread %d of %s to CPU %d: %w", pids[0], dev, cpu, err)
	}
	return pids[0], nil
}

// ksoftirqd returns the PID of each CPU's ksoftirqd, by CPU.
func ksoftirqd(ncpu int) []int {
	pids := make([]int, ncpu)
	for cpu := range pids {
		name := fmt.Sprintf("ksoftirqd/%d", cpu)
		if p, err := kernelThreads(func(comm string) bool { return comm == name }); err == nil && len(p) == 1 {
			pids[cpu] = p[0]
		}
	}
	return pids
}

var errInterrupted = errors.New("interrupted")
