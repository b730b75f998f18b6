package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/espx/espx/afxdp"
)

// fakePort is an in-memory Port on a real (unbound) UMEM: tests queue
// frames to receive and read back what the worker sent. Frames given back
// by Recycle or sent by Transmit return to the UMEM at once, as the
// kernel's fill and completion rings would return them.
type fakePort struct {
	ifindex int
	mem     *afxdp.UMEM
	rxq     []afxdp.Desc
	sent    [][]byte // copies of transmitted frames, unless discard
	discard bool
	// gen, if set, makes Receive produce copies of gen forever: the
	// packet source of the pipeline benchmarks.
	gen      []byte
	genAddrs []uint64
	// genList, if set, makes Receive cycle through these frames, calling
	// onWrap each time it starts over.
	genList  [][]byte
	genNext  int
	onWrap   func()
	txFull   bool // refuse every transmit, as a full TX ring
	received int
}

func newUMEM(tb testing.TB) *afxdp.UMEM {
	tb.Helper()
	u, err := afxdp.NewUMEM(afxdp.UMEMConfig{FrameSize: 2048, NumFrames: 4096})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { u.Close() })
	return u
}

// queue copies frames into the UMEM to be received.
func (p *fakePort) queue(tb testing.TB, frames ...[]byte) {
	tb.Helper()
	for _, b := range frames {
		var a [1]uint64
		if p.mem.Alloc(a[:]) != 1 {
			tb.Fatal("UMEM exhausted")
		}
		d := p.mem.Desc(a[0], p.mem.RxOffset(), len(b))
		copy(p.mem.Data(d), b)
		p.rxq = append(p.rxq, d)
	}
}

func (p *fakePort) Receive(descs []afxdp.Desc) int {
	if p.genList != nil {
		if cap(p.genAddrs) < len(descs) {
			p.genAddrs = make([]uint64, len(descs))
		}
		n := p.mem.Alloc(p.genAddrs[:len(descs)])
		for i, a := range p.genAddrs[:n] {
			if p.genNext == len(p.genList) {
				p.genNext = 0
				p.onWrap()
			}
			g := p.genList[p.genNext]
			p.genNext++
			d := p.mem.Desc(a, p.mem.RxOffset(), len(g))
			buf, off := p.mem.Chunk(d)
			copy(buf[off:], g)
			descs[i] = d
		}
		p.received += n
		return n
	}
	if p.gen != nil {
		if cap(p.genAddrs) < len(descs) {
			p.genAddrs = make([]uint64, len(descs))
		}
		n := p.mem.Alloc(p.genAddrs[:len(descs)])
		for i, a := range p.genAddrs[:n] {
			d := p.mem.Desc(a, p.mem.RxOffset(), len(p.gen))
			buf, off := p.mem.Chunk(d)
			copy(buf[off:], p.gen)
			descs[i] = d
		}
		p.received += n
		return n
	}
	n := copy(descs, p.rxq)
	p.rxq = p.rxq[n:]
	p.received += n
	return n
}

func (p *fakePort) Transmit(descs []afxdp.Desc) int {
	if p.txFull {
		return 0
	}
	if !p.discard {
		for _, d := range descs {
			p.sent = append(p.sent, append([]byte(nil), p.mem.Data(d)...))
		}
	}
	p.mem.Free(descs)
	return len(descs)
}

func (p *fakePort) Recycle(descs []afxdp.Desc) int {
	p.mem.Free(descs)
	return len(descs)
}

func (p *fakePort) Refill() int   { return 0 }
func (p *fakePort) Complete() int { return 0 }
func (p *fakePort) Ifindex() int  { return p.ifindex }
func (p *fakePort) FD() int       { return -1 }

// take returns and forgets what the port sent.
func (p *fakePort) take() [][]byte {
	s := p.sent
	p.sent = nil
	return s
}

// fakeRoute is one entry of a fakeRouter.
type fakeRoute struct {
	dst netip.Prefix
	nh  NextHop
	// unresolved makes the route's next hop unknown at layer 2.
	unresolved bool
}

// fakeRouter routes by the longest of a few prefixes, and knows one
// address per interface and family.
type fakeRouter struct {
	routes   []fakeRoute
	src      map[int][2]netip.Addr
	resolves int
}

func (r *fakeRouter) Route(dst netip.Addr, nh *NextHop) RouteResult {
	best := -1
	for i := range r.routes {
		if r.routes[i].dst.Contains(dst) && (best < 0 || r.routes[i].dst.Bits() > r.routes[best].dst.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return RouteNone
	}
	*nh = r.routes[best].nh
	if !nh.Addr.IsValid() {
		nh.Addr = dst
	}
	if r.routes[best].unresolved {
		return RouteUnresolved
	}
	return RouteOK
}

func (r *fakeRouter) Resolve(int, netip.Addr) { r.resolves++ }

func (r *fakeRouter) Source(ifindex int, v6 bool) netip.Addr {
	a := r.src[ifindex]
	if v6 {
		return a[1]
	}
	return a[0]
}

// mac is a locally administered MAC address ending in n.
func mac(n byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, n} }

// ether wraps an IP packet in an Ethernet header from src to dst.
func ether(dst, src [6]byte, ip []byte) []byte {
	f := make([]byte, ethLen+len(ip))
	copy(f, dst[:])
	copy(f[6:], src[:])
	et := uint16(ethTypeIPv4)
	if ip[0]>>4 == 6 {
		et = ethTypeIPv6
	}
	binary.BigEndian.PutUint16(f[ethTypeOff:], et)
	copy(f[ethLen:], ip)
	return f
}
