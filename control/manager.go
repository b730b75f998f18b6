package control

import (
	"sync"
	"sync/atomic"
)

// saTable is the IKE SA manager's table: IKE SAs by our SPI, split into
// segments with a lock each, as strongSwan's IKE SA manager segments its
// table, so that the messages of many IKE SAs are dispatched from many
// cores without one lock between them. Our SPIs are random, so they
// spread evenly over the segments. Lock order: an IKE SA's mutex, then a
// segment's (never two segments at once).
type saTable struct {
	seg [saSegments]saSegment
	n   atomic.Int64
}

// saSegments is a power of two well above the core counts of the
// gateways espx is for.
const saSegments = 64

type saSegment struct {
	mu sync.Mutex
	m  map[uint64]*IKESA
	_  [64 - 16]byte // keep segments off each other's cache lines
}

func (t *saTable) segment(spi uint64) *saSegment {
	// The low bits of a random SPI are as good as any.
	return &t.seg[spi&(saSegments-1)]
}

// get returns the IKE SA with our SPI spi, or nil.
func (t *saTable) get(spi uint64) *IKESA {
	s := t.segment(spi)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[spi]
}

// put adds sa under our SPI spi.
func (t *saTable) put(spi uint64, sa *IKESA) {
	s := t.segment(spi)
	s.mu.Lock()
	if s.m == nil {
		s.m = map[uint64]*IKESA{}
	}
	if _, ok := s.m[spi]; !ok {
		t.n.Add(1)
	}
	s.m[spi] = sa
	s.mu.Unlock()
}

// remove forgets spi if sa is what it holds.
func (t *saTable) remove(spi uint64, sa *IKESA) {
	s := t.segment(spi)
	s.mu.Lock()
	if s.m[spi] == sa {
		delete(s.m, spi)
		t.n.Add(-1)
	}
	s.mu.Unlock()
}

// len is the number of IKE SAs.
func (t *saTable) len() int { return int(t.n.Load()) }

// all returns every IKE SA, one segment at a time: a snapshot per
// segment, for the operator's and the timers' scans.
func (t *saTable) all() []*IKESA {
	out := make([]*IKESA, 0, t.len())
	for i := range t.seg {
		s := &t.seg[i]
		s.mu.Lock()
		for _, sa := range s.m {
			out = append(out, sa)
		}
		s.mu.Unlock()
	}
	return out
}

// byName returns the IKE SAs of the connection name.
func (t *saTable) byName(name string) []*IKESA {
	var out []*IKESA
	for _, sa := range t.all() {
		if sa.cfg.Name == name {
			out = append(out, sa)
		}
	}
	return out
}
