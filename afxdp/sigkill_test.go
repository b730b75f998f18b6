package afxdp

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The SIGKILL test re-executes the test binary as a child that attaches
// the program and binds a socket, then waits to be killed.
const (
	childNetnsEnv = "ESPX_AFXDP_CHILD_NETNS"
	childDevEnv   = "ESPX_AFXDP_CHILD_DEV"
)

func TestMain(m *testing.M) {
	if ns := os.Getenv(childNetnsEnv); ns != "" {
		if err := attachAndWait(ns, os.Getenv(childDevEnv)); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// attachAndWait is the child: it enters namespace ns, attaches the
// unprotected program to dev with a socket on queue 0, reports "attached",
// and sleeps for at most a minute.
func attachAndWait(ns, dev string) error {
	runtime.LockOSThread()
	fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return err
	}
	ifc, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	ifindex := ifc.Index
	p, err := NewProgram(ProgramConfig{Side: Unprotected})
	if err != nil {
		return err
	}
	if _, err := p.Attach(ifindex); err != nil {
		return err
	}
	u, err := NewUMEM(UMEMConfig{NumFrames: 64})
	if err != nil {
		return err
	}
	s, err := NewSocket(u, ifindex, 0, SocketConfig{FillSize: 32, CompletionSize: 32, RxSize: 32, TxSize: 32})
	if err != nil {
		return err
	}
	s.Refill()
	if err := p.SetSocket(s); err != nil {
		return err
	}
	fmt.Println("attached")
	time.Sleep(time.Minute)
	return nil
}

// TestSIGKILLDetaches kills a process that has the program attached and a
// socket bound, and checks that the kernel took the program off the
// device: it was attached through a bpf link, which dies with the process.
func TestSIGKILLDetaches(t *testing.T) {
	requireNetns(t)
	gw, peer := newNetns(t), newNetns(t)
	veth(t, gw, "g0", peer, "p0", 1)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childNetnsEnv+"="+gw.name, childDevEnv+"=g0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case l := <-line:
		if l != "attached" {
			t.Fatalf("child: %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not attach within 20 s")
	}
	if id := gw.xdpProgID(t, "g0"); id == 0 {
		t.Fatal("no XDP program on g0 while the child runs")
	}
	if err := cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waited = true
	id := -1
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if id = gw.xdpProgID(t, "g0"); id == 0 {
			break
		}
	}
	if id != 0 {
		t.Errorf("XDP program %d still attached to g0 after SIGKILL", id)
	}
	// The queue is free again for a new socket.
	u := newTestUMEM(t, UMEMConfig{NumFrames: 64})
	openSocket(t, gw, u, gw.ifindex(t, "g0"), 0, SocketConfig{FillSize: 32, CompletionSize: 32, RxSize: 32, TxSize: 32})
}

// TestRebind closes a socket and binds its queue again at once, which
// the kernel refuses with EBUSY for a while; NewSocket retries.
func TestRebind(t *testing.T) {
	requireNetns(t)
	gw, peer := newNetns(t), newNetns(t)
	veth(t, gw, "g0", peer, "p0", 1)
	ifindex := gw.ifindex(t, "g0")
	u := newTestUMEM(t, UMEMConfig{NumFrames: 64})
	cfg := SocketConfig{FillSize: 32, CompletionSize: 32, RxSize: 32, TxSize: 32}
	var retries uint64
	for range 5 {
		var s *Socket
		gw.must(t, func() error {
			var err error
			s, err = NewSocket(u, ifindex, 0, cfg)
			return err
		})
		s.Refill()
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		retries += st.BindRetries
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stats(); err == nil {
			t.Error("Stats on a closed socket: no error")
		}
		checkAccounting(t, u, 0)
	}
	t.Logf("bind retries after EBUSY over 5 rebinds: %d", retries)
}
