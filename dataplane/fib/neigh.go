package fib

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// NeighState is the state of a neighbour entry: the kernel's NUD_* bits,
// so that values from netlink convert without a table.
type NeighState uint16

// The kernel's neighbour states (include/uapi/linux/neighbour.h).
const (
	NeighIncomplete NeighState = 0x01
	NeighReachable  NeighState = 0x02
	NeighStale      NeighState = 0x04
	NeighDelay      NeighState = 0x08
	NeighProbe      NeighState = 0x10
	NeighFailed     NeighState = 0x20
	NeighNoARP      NeighState = 0x40
	NeighPermanent  NeighState = 0x80
)

const (
	// nudValid is the kernel's NUD_VALID: the states whose link-layer
	// address the kernel itself sends to.
	nudValid = NeighReachable | NeighStale | NeighDelay | NeighProbe | NeighPermanent | NeighNoARP
	nudStale = NeighStale
)

// Usable reports whether packets can be sent to the entry's MAC: the
// kernel's NUD_VALID states.
func (s NeighState) Usable() bool { return s&nudValid != 0 }

func (s NeighState) String() string {
	if s == 0 {
		return "NONE"
	}
	names := [...]string{"INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "NOARP", "PERMANENT"}
	var b strings.Builder
	for i, n := range names {
		if s&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// Neighbor is a neighbour entry: the link-layer address of an on-link IP
// address, as ARP or ND found it.
type Neighbor struct {
	Ifindex int
	Addr    netip.Addr
	MAC     [6]byte
	// State is the entry's state; [Table.Replace] takes 0 as
	// NeighPermanent.
	State NeighState
}

// neighKey is how neighbours are found: IPv4 addresses as IPv4-mapped
// IPv6 ones, so that both families share one map.
type neighKey struct {
	ifindex int32
	addr    [16]byte
}

func neighKeyOf(ifindex int, a netip.Addr) neighKey {
	return neighKey{ifindex: int32(ifindex), addr: a.As16()}
}

// neighEntry is one neighbour in a snapshot. An update replaces the entry
// rather than changing it, so that a reader sees its MAC and state
// consistently.
type neighEntry struct {
	addr  netip.Addr
	mac   [6]byte
	state NeighState
	// used is set by a lookup that found the entry STALE and cleared
	// by the mirror when it asks the kernel to confirm the entry.
	used atomic.Bool
}

// Neighbors returns a copy of the table's neighbour entries, ordered by
// interface and address, for inspection and tests; it allocates.
func (t *Table) Neighbors() []Neighbor {
	m := t.snap.Load().neigh
	out := make([]Neighbor, 0, len(m))
	for k, e := range m {
		out = append(out, Neighbor{Ifindex: int(k.ifindex), Addr: e.addr, MAC: e.mac, State: e.state})
	}
	slices.SortFunc(out, func(a, b Neighbor) int {
		return cmp.Or(cmp.Compare(a.Ifindex, b.Ifindex), a.Addr.Compare(b.Addr))
	})
	return out
}

// Neighbor returns the neighbour entry of addr on the interface ifindex.
func (t *Table) Neighbor(ifindex int, addr netip.Addr) (Neighbor, bool) {
	e := t.snap.Load().neigh[neighKeyOf(ifindex, addr)]
	if e == nil {
		return Neighbor{}, false
	}
	return Neighbor{Ifindex: ifindex, Addr: e.addr, MAC: e.mac, State: e.state}, true
}
