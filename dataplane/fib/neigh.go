package fib

import (
	"cmp"
	"math/bits"
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

// String returns the state's names as `ip neigh` shows them, joined by
// "|" when several bits are set.
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

// neighKey is how the mirror's state keys neighbours: IPv4 addresses as
// IPv4-mapped IPv6 ones, so that both families share one map.
type neighKey struct {
	ifindex int32
	addr    [16]byte
}

func neighKeyOf(ifindex int, a netip.Addr) neighKey {
	return neighKey{ifindex: int32(ifindex), addr: a.As16()}
}

// neighTable is the snapshot's form of the neighbours: an open-addressing
// hash table keyed like the LPM's, so that a lookup reuses the key it
// already has for the destination (or precomputed for the gateway) and
// hashes it with a few multiplies, where a Go map would hash 20 bytes with
// AES and compare them with memequal.
type neighTable struct {
	slots []neighSlot // power of two, at most half full; nil when empty
	mask  uint64
	shift uint8
}

type neighSlot struct {
	hi, lo uint64
	id     uint64 // neighID; 0 marks an empty slot
	e      *neighEntry
}

// neighID folds the interface and the family into one word: IPv4 keys and
// the IPv6 keys with the same 128 bits must not meet. Interface indexes
// start at 1, so an ID is never 0.
func neighID(ifindex int, is4 bool) uint64 {
	id := uint64(ifindex) << 1
	if is4 {
		id |= 1
	}
	return id
}

func (t *neighTable) find(k key128, id uint64) *neighEntry {
	if t.slots == nil {
		return nil
	}
	i := hash128(k.hi, k.lo, id) >> t.shift
	for {
		s := &t.slots[i]
		if s.id == 0 {
			return nil
		}
		if s.hi == k.hi && s.lo == k.lo && s.id == id {
			return s.e
		}
		i = (i + 1) & t.mask
	}
}

func buildNeighTable(m map[neighKey]*neighEntry) neighTable {
	if len(m) == 0 {
		return neighTable{}
	}
	size := 8
	for size < 2*len(m) {
		size <<= 1
	}
	t := neighTable{
		slots: make([]neighSlot, size),
		mask:  uint64(size - 1),
		shift: uint8(64 - bits.TrailingZeros(uint(size))),
	}
	for k, e := range m {
		key, id := keyOf(e.addr), neighID(int(k.ifindex), e.addr.Is4())
		i := hash128(key.hi, key.lo, id) >> t.shift
		for t.slots[i].id != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = neighSlot{hi: key.hi, lo: key.lo, id: id, e: e}
	}
	return t
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
	var out []Neighbor
	for _, s := range t.snap.Load().neigh.slots {
		if s.id != 0 {
			out = append(out, Neighbor{Ifindex: int(s.id >> 1), Addr: s.e.addr, MAC: s.e.mac, State: s.e.state})
		}
	}
	slices.SortFunc(out, func(a, b Neighbor) int {
		return cmp.Or(cmp.Compare(a.Ifindex, b.Ifindex), a.Addr.Compare(b.Addr))
	})
	return out
}

// Neighbor returns the neighbour entry of addr on the interface ifindex.
func (t *Table) Neighbor(ifindex int, addr netip.Addr) (Neighbor, bool) {
	addr = addr.Unmap()
	nt := &t.snap.Load().neigh
	e := nt.find(keyOf(addr), neighID(ifindex, addr.Is4()))
	if e == nil {
		return Neighbor{}, false
	}
	return Neighbor{Ifindex: ifindex, Addr: e.addr, MAC: e.mac, State: e.state}, true
}
