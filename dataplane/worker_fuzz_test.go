package dataplane

import (
	"net/netip"
	"testing"
)

// FuzzWorker throws arbitrary frames at a worker from either side: what a
// host behind the gateway, or anyone on the unprotected link, can send.
// The seeds are every kind of packet the worker handles, ESP from its peer
// among them. Nothing may panic, and every frame taken in must come out,
// be held, or be dropped under a named reason.
func FuzzWorker(f *testing.F) {
	p := newTestPair(f, Config{}, false, false)
	a4, b4 := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20")
	a6, b6 := netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:2::20")
	var inner [][]byte
	for _, n := range []int{0, 18, 1200, 1472} {
		inner = append(inner, udpPacket(a4, b4, n, 0), udpPacket(a6, b6, n, 0))
	}
	ttl1 := udpPacket(a4, b4, 10, 0)
	ttl1[ipv4TTLOff] = 1
	ipv4(ttl1).setChecksum()
	noDF := udpPacket(a4, b4, 1472, 0)
	putUint16(noDF[ipv4FlagsOff:], 0)
	ipv4(noDF).setChecksum()
	inner = append(inner, ttl1, noDF, udpPacket(b4, a4, 10, 0), udpPacket(a4, netip.MustParseAddr("192.0.2.2"), 10, 0))
	for _, ip := range inner {
		f.Add(false, ether(macGwAProt, macHostA, ip))
	}
	// ESP from gwA, as gwB's unprotected side receives it.
	for _, ip := range inner[:4] {
		_, wire := p.aToB(f, ip)
		for _, w := range wire {
			f.Add(true, w)
		}
	}
	f.Add(false, []byte{})
	f.Add(true, ether(macGwBUnprot, macGwAUnprot, []byte{0x45}))
	f.Fuzz(func(t *testing.T, unprot bool, frame []byte) {
		if len(frame) > 1514 {
			return // more than an Ethernet frame at MTU 1500
		}
		g, port := p.a, p.a.prot
		if unprot {
			g, port = p.b, p.b.unprot
		}
		port.Queue(t, frame)
		g.poll()
		g.prot.Take()
		g.unprot.Take()
		checkBalance(t, g)
	})
}
