package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Addresses: documentation ranges only.
const (
	respAddr = "192.0.2.1" // the responder's IKE address
	linkAddr = "192.0.2.2" // the initiators' namespace on the link
	initNet  = "198.51.100.0/24"
	// The traffic selectors are IPv6, inside IPv4 IKE: kernel-libipsec
	// refuses a child SA whose remote selector holds the peer's IKE
	// address ("conflicts with IKE traffic"), and the documentation's IPv4
	// ranges have no room for 254 more distinct networks.
	protNet  = "2001:db8:ffff::/64" // behind the responder: its selector
	protAddr = "2001:db8:ffff::1"   // the responder's own address in protNet
	// initTSNet holds every initiator's selector, initiatorTS(i); it is
	// the responders' remote selector, which they narrow to the
	// initiator's proposal (RFC 7296 section 2.9).
	initTSNet = "2001:db8::/48"
)

// initiatorAddr is the address of initiator i (0-based): 198.51.100.i+1.
func initiatorAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
}

// initiatorTS is the network behind initiator i: 2001:db8:0:i+1::/64.
func initiatorTS(i int) netip.Prefix {
	var a [16]byte
	a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
	a[6], a[7] = byte((i+1)>>8), byte(i+1)
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// topo is the pair of namespaces.
type topo struct {
	resp, init string
}

// newTopo creates the responder and initiator namespaces and the link
// between them; they are removed by name at teardown.
func (b *bench) newTopo(ctx context.Context) (*topo, error) {
	var r [3]byte
	_, _ = rand.Read(r[:])
	p := "ikeb-" + hex.EncodeToString(r[:])
	tp := &topo{resp: p + "-resp", init: p + "-init"}
	for _, ns := range []string{tp.resp, tp.init} {
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
	if err := b.Cmd(ctx, "ip", "link", "add", "link0", "netns", tp.resp, "type", "veth", "peer", "name", "link0", "netns", tp.init); err != nil {
		return nil, err
	}
	batch := []string{
		"addr add " + linkAddr + "/24 dev link0",
		"link set link0 up",
	}
	for i := range b.opt.initiators {
		batch = append(batch, "addr add "+initiatorAddr(i).String()+"/32 dev link0")
	}
	if err := b.ipBatch(ctx, tp.init, batch); err != nil {
		return nil, err
	}
	// protAddr is there for kernel-libipsec, which routes a child SA's
	// remote selector into its TUN device from a local address inside the
	// local selector, and refuses the child SA without one.
	if err := b.ipBatch(ctx, tp.resp, []string{
		"addr add " + protAddr + "/128 dev lo",
		"addr add " + respAddr + "/24 dev link0",
		"link set link0 up",
		"route add " + initNet + " via " + linkAddr,
	}); err != nil {
		return nil, err
	}
	// Resolve the neighbours now, so that no measurement starts with ARP.
	for _, p := range []struct{ ns, src, dst string }{{tp.resp, respAddr, linkAddr}, {tp.init, linkAddr, respAddr}} {
		if err := b.Cmd(ctx, "ip", "netns", "exec", p.ns, "ping", "-n", "-q", "-c", "1", "-W", "2", "-I", p.src, p.dst); err != nil {
			return nil, fmt.Errorf("%s cannot reach %s: %w", p.ns, p.dst, err)
		}
	}
	return tp, nil
}

// ipBatch runs ip(8) commands in namespace ns in one process.
func (b *bench) ipBatch(ctx context.Context, ns string, lines []string) error {
	path := fmt.Sprintf("%s/ip-%s.batch", b.dir, ns)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return b.Cmd(ctx, "ip", "-n", ns, "-batch", path)
}
