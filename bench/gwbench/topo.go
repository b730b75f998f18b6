package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

type kind int

const (
	espx kind = iota
	strongswan
	plain // no IPsec: the gateways' kernels route, the ceiling of the topology
)

// system is one of the gateway implementations under test, with the veth
// offload setting it runs with.
type system struct {
	kind     kind
	offloads bool // veth checksum/segmentation offloads left at their defaults
}

func (s system) String() string {
	switch s.kind {
	case espx:
		return "espx"
	case plain:
		return "no IPsec (kernel routing)"
	}
	if s.offloads {
		return "strongSwan (offloads on)"
	}
	return "strongSwan (offloads off)"
}

// Addresses: documentation ranges only.
const (
	hostAAddr = "198.51.100.10"
	gwAProt   = "198.51.100.1"
	gwAWire   = "192.0.2.1"
	gwBWire   = "192.0.2.2"
	gwBProt   = "203.0.113.1"
	hostBAddr = "203.0.113.10"
	netA      = "198.51.100.0/24"
	netB      = "203.0.113.0/24"

	// lanMTU is the MTU of the protected links: libipsec's TUN has 1400,
	// and espx's tunnel fits 1400-byte inner packets in the wire's 1500.
	lanMTU = 1400
)

// topo is one set of four namespaces.
type topo struct {
	hostA, gwA, gwB, hostB string
}

// newTopo creates hostA - gwA - gwB - hostB for system s; the namespaces
// are removed by name at the measurement's end.
func (b *bench) newTopo(ctx context.Context, s system) (*topo, error) {
	var r [3]byte
	_, _ = rand.Read(r[:])
	p := "gwb-" + hex.EncodeToString(r[:])
	tp := &topo{hostA: p + "-hostA", gwA: p + "-gwA", gwB: p + "-gwB", hostB: p + "-hostB"}
	for _, ns := range []string{tp.hostA, tp.gwA, tp.gwB, tp.hostB} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			return nil, fmt.Errorf("namespace %s exists already", ns)
		}
		if err := b.Cmd(ctx, "ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		b.AtExit(func() { b.DelNS(ns) })
		if err := b.Cmd(ctx, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
	}
	links := []struct {
		ns1, dev1, ns2, dev2 string
		mtu                  int
	}{
		{tp.hostA, "eth0", tp.gwA, "prot", lanMTU},
		{tp.gwA, "unprot", tp.gwB, "unprot", 1500},
		{tp.hostB, "eth0", tp.gwB, "prot", lanMTU},
	}
	for _, l := range links {
		if err := b.Cmd(ctx, "ip", "link", "add", l.dev1, "netns", l.ns1, "mtu", fmt.Sprint(l.mtu), "type", "veth",
			"peer", "name", l.dev2, "netns", l.ns2, "mtu", fmt.Sprint(l.mtu)); err != nil {
			return nil, err
		}
	}
	for _, a := range []struct{ ns, dev, addr string }{
		{tp.hostA, "eth0", hostAAddr + "/24"},
		{tp.gwA, "prot", gwAProt + "/24"},
		{tp.gwA, "unprot", gwAWire + "/24"},
		{tp.gwB, "unprot", gwBWire + "/24"},
		{tp.gwB, "prot", gwBProt + "/24"},
		{tp.hostB, "eth0", hostBAddr + "/24"},
	} {
		if err := b.Cmd(ctx, "ip", "-n", a.ns, "addr", "add", a.addr, "dev", a.dev, "nodad"); err != nil {
			return nil, err
		}
		if !s.offloads {
			if err := b.Cmd(ctx, "ip", "netns", "exec", a.ns, "ethtool", "-K", a.dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"); err != nil {
				return nil, err
			}
		}
		if err := b.Cmd(ctx, "ip", "-n", a.ns, "link", "set", a.dev, "up"); err != nil {
			return nil, err
		}
	}
	for _, rt := range []struct{ ns, via string }{{tp.hostA, gwAProt}, {tp.hostB, gwBProt}} {
		if err := b.Cmd(ctx, "ip", "-n", rt.ns, "route", "add", "default", "via", rt.via); err != nil {
			return nil, err
		}
	}
	// The gateways have no route to the other side's hosts: for espx their
	// kernels do not forward at all; for strongSwan the only way there is
	// charon's route into its TUN device (table 220). Nothing can pass in
	// the clear.
	fwd := "0"
	if s.kind != espx {
		fwd = "1"
	}
	for _, ns := range []string{tp.gwA, tp.gwB} {
		if err := b.Cmd(ctx, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward="+fwd); err != nil {
			return nil, err
		}
	}
	if s.kind == plain {
		for _, rt := range []struct{ ns, dst, via string }{{tp.gwA, netB, gwBWire}, {tp.gwB, netA, gwAWire}} {
			if err := b.Cmd(ctx, "ip", "-n", rt.ns, "route", "add", rt.dst, "via", rt.via); err != nil {
				return nil, err
			}
		}
	}
	// Resolve the neighbours now, so that no run starts with ARP.
	for _, p := range []struct{ ns, dst string }{
		{tp.gwA, hostAAddr}, {tp.gwA, gwBWire}, {tp.gwB, hostBAddr}, {tp.hostA, gwAProt}, {tp.hostB, gwBProt},
	} {
		if err := b.Cmd(ctx, "ip", "netns", "exec", p.ns, "ping", "-n", "-q", "-c", "1", "-W", "2", p.dst); err != nil {
			return nil, fmt.Errorf("%s cannot reach %s before the gateways start: %w", p.ns, p.dst, err)
		}
	}
	return tp, nil
}

// logBuffer collects a child's output; the child writes it from exec's
// copying goroutine while the harness may read it for an error message.
type logBuffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// proc is a long-running child of the harness.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait has returned: the PID is reaped
	err  error         // Wait's result, valid once done is closed
}

// background starts a long-running command in its own process group (so
// that a Ctrl-C meant for the harness does not reach it first).
func (b *bench) background(args []string, out *logBuffer) (*proc, error) {
	if b.opt.verbose {
		fmt.Fprintln(os.Stderr, "+", strings.Join(args, " "), "&")
	}
	p := &proc{cmd: exec.Command(args[0], args[1:]...), done: make(chan struct{})}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended (and been reaped).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process, by its PID, and SIGKILL if it has
// not exited within grace. It may be called again: once the process has
// been reaped, os.Process signals nothing.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("pid %d ignored SIGTERM for %v, killed", p.pid(), grace)
	}
}
