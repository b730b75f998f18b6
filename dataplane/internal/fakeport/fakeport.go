// Package fakeport is an in-memory dataplane.Port for the data plane's
// tests and benchmarks: no kernel, a real (unbound) UMEM.
package fakeport

import (
	"testing"

	"github.com/espx/espx/afxdp"
)

// Port is an in-memory Port: tests queue frames to receive and read back
// what the worker sent. Frames given back by Recycle or sent by Transmit
// return to the UMEM at once, as the kernel's fill and completion rings
// would return them.
type Port struct {
	Index int // the interface index it reports
	Mem   *afxdp.UMEM
	// Sent holds copies of the transmitted frames, unless Discard.
	Sent    [][]byte
	Discard bool
	// Gen, if set, makes Receive produce copies of Gen for ever: the
	// packet source of the pipeline benchmarks.
	Gen []byte
	// GenList, if set, makes Receive cycle through these frames, calling
	// OnWrap each time it starts over.
	GenList [][]byte
	OnWrap  func()
	// TxFull refuses every transmit, as a full TX ring.
	TxFull bool
	// Received counts the frames received.
	Received int

	rxq      []afxdp.Desc
	genAddrs []uint64
	genNext  int
}

// NewUMEM is a UMEM of frames 2048-byte frames, closed when tb ends.
func NewUMEM(tb testing.TB, frames int) *afxdp.UMEM {
	tb.Helper()
	u, err := afxdp.NewUMEM(afxdp.UMEMConfig{FrameSize: 2048, NumFrames: frames})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { u.Close() })
	return u
}

// Queue copies frames into the UMEM to be received.
func (p *Port) Queue(tb testing.TB, frames ...[]byte) {
	tb.Helper()
	for _, b := range frames {
		var a [1]uint64
		if p.Mem.Alloc(a[:]) != 1 {
			tb.Fatal("UMEM exhausted")
		}
		d := p.Mem.Desc(a[0], p.Mem.RxOffset(), len(b))
		copy(p.Mem.Data(d), b)
		p.rxq = append(p.rxq, d)
	}
}

// Receive implements dataplane.Port.
func (p *Port) Receive(descs []afxdp.Desc) int {
	if p.GenList == nil && p.Gen == nil {
		n := copy(descs, p.rxq)
		p.rxq = p.rxq[n:]
		p.Received += n
		return n
	}
	if cap(p.genAddrs) < len(descs) {
		p.genAddrs = make([]uint64, len(descs))
	}
	n := p.Mem.Alloc(p.genAddrs[:len(descs)])
	for i, a := range p.genAddrs[:n] {
		g := p.Gen
		if p.GenList != nil {
			if p.genNext == len(p.GenList) {
				p.genNext = 0
				p.OnWrap()
			}
			g = p.GenList[p.genNext]
			p.genNext++
		}
		d := p.Mem.Desc(a, p.Mem.RxOffset(), len(g))
		buf, off := p.Mem.Chunk(d)
		copy(buf[off:], g)
		descs[i] = d
	}
	p.Received += n
	return n
}

// Transmit implements dataplane.Port.
func (p *Port) Transmit(descs []afxdp.Desc) int {
	if p.TxFull {
		return 0
	}
	if !p.Discard {
		for _, d := range descs {
			p.Sent = append(p.Sent, append([]byte(nil), p.Mem.Data(d)...))
		}
	}
	p.Mem.Free(descs)
	return len(descs)
}

// Recycle implements dataplane.Port.
func (p *Port) Recycle(descs []afxdp.Desc) int {
	p.Mem.Free(descs)
	return len(descs)
}

func (p *Port) Refill() int   { return 0 }
func (p *Port) Complete() int { return 0 }
func (p *Port) Ifindex() int  { return p.Index }
func (p *Port) FD() int       { return -1 }

// Take returns and forgets what the port sent.
func (p *Port) Take() [][]byte {
	s := p.Sent
	p.Sent = nil
	return s
}
