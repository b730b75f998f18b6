// Package netnstest gives tests network namespaces of their own: it creates
// them with unique names, connects them with veth pairs, runs commands and
// Go code inside them, and removes exactly what it created when the test
// ends. Tests that use it need root; Require skips them, with the reason,
// elsewhere.
package netnstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require skips the test unless it runs as root with iproute2 on a kernel
// with network namespaces.
func Require(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates network namespaces and veth pairs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs iproute2's ip command: ", err)
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		tb.Skip("kernel without network namespaces: ", err)
	}
}

// Run runs a command, bounded to 20 s, and fails the test if it fails.
func Run(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := RunErr(args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// RunErr runs a command, bounded to 20 s, and returns its output.
func RunErr(args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out.String())
		}
		return out.String(), nil
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%s: timed out", strings.Join(args, " "))
	}
}

// NS is a network namespace a test created.
type NS struct{ Name string }

// New creates a namespace named prefix-<random>, brings its loopback up,
// and deletes it, with every device in it, when the test ends.
func New(tb testing.TB, prefix string) *NS {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := &NS{Name: prefix + "-" + hex.EncodeToString(b[:])}
	Run(tb, "ip", "netns", "add", n.Name)
	tb.Cleanup(func() {
		if _, err := RunErr("ip", "netns", "del", n.Name); err != nil {
			tb.Errorf("remove namespace: %v", err)
		}
	})
	Run(tb, "ip", "-n", n.Name, "link", "set", "lo", "up")
	return n
}

// IP runs ip(8) in the namespace.
func (n *NS) IP(tb testing.TB, args ...string) string {
	tb.Helper()
	return Run(tb, append([]string{"ip", "-n", n.Name}, args...)...)
}

// Veth connects a and b with a veth pair named ifA in a and ifB in b,
// both up. It goes away with the namespaces.
func Veth(tb testing.TB, a *NS, ifA string, b *NS, ifB string) {
	tb.Helper()
	VethQueues(tb, a, ifA, b, ifB, 1)
}

// VethQueues is Veth with queues RX and TX queues on each side.
func VethQueues(tb testing.TB, a *NS, ifA string, b *NS, ifB string, queues int) {
	tb.Helper()
	q := fmt.Sprint(queues)
	a.IP(tb, "link", "add", ifA, "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", ifB, "netns", b.Name, "numtxqueues", q, "numrxqueues", q)
	a.IP(tb, "link", "set", ifA, "up")
	b.IP(tb, "link", "set", ifB, "up")
}

// Do runs fn on an OS thread inside the namespace: sockets it opens belong
// to the namespace and stay usable from any goroutine afterwards. The thread
// goes back to the original namespace, or is retired if it cannot.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the goroutine exits locked and the runtime retires the thread
		errc <- err
	}()
	return <-errc
}
