package dataplane

import (
	"sync/atomic"

	"github.com/espx/espx/spd"
)

// cacheLine is the size of the padding that keeps one worker's counters
// off another's cache lines.
const cacheLine = 64

// Counters are one worker's packet counters. Only the owning worker writes
// them; a collector reads them at any time with Snapshot. The fields are
// atomics so that those reads are race-free; on amd64 and arm64 an atomic
// load or a store by the only writer costs the same as a plain one.
type Counters struct {
	_ [cacheLine]byte

	EncapPackets atomic.Uint64
	EncapBytes   atomic.Uint64 // plaintext bytes before encapsulation
	DecapPackets atomic.Uint64
	DecapBytes   atomic.Uint64 // plaintext bytes after decapsulation
	drops        [numDrops]atomic.Uint64

	// Per side (Protected, Unprotected): frames received from and sent to
	// the interface, with Ethernet headers.
	RxPackets, RxBytes [2]atomic.Uint64
	TxPackets, TxBytes [2]atomic.Uint64
	// Acquires raised; trap hits while one was pending (suppressed);
	// packets held for an SA and later sent; ICMP errors sent.
	Acquires, AcquiresSuppressed, HeldSent, ICMPSent atomic.Uint64
	// SPDLookups counts policy lookups; of them, SPDHashedHits found
	// their policy in the hash table and SPDListHits in the list of
	// policies too short to hash. SPDListScans counts lookups that
	// compared the packet with listed policies, SPDListEntries those
	// comparisons: a configuration whose thresholds suit its policies keeps
	// them low.
	SPDLookups, SPDHashedHits, SPDListHits atomic.Uint64
	SPDListScans, SPDListEntries           atomic.Uint64
	// NeighHeld counts packets set aside to wait for a next hop's
	// link-layer address; NeighResumed those that then went on (sent, or
	// dropped as no_neighbour after waiting too long).
	NeighHeld, NeighResumed atomic.Uint64
	// Fragments counts the extra packets made by fragmenting IPv4 packets
	// (DF clear) that would not fit the tunnel whole.
	Fragments atomic.Uint64

	_ [cacheLine]byte
}

// add is a single-writer increment: only the owning worker writes, so a
// load and a store suffice where other writers would need a locked add.
func add(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// pending is what a worker has counted since it last published to its
// Counters. It is plain memory: an atomic store is a locked instruction on
// amd64, too dear for every packet, so the engine publishes once a batch.
type pending struct {
	encapPackets, encapBytes, decapPackets, decapBytes uint64
	drops                                              [numDrops]uint64
	rxPackets, rxBytes, txPackets, txBytes             [2]uint64
	acquires, suppressed, heldSent, icmp, spd          uint64
	spdStats                                           spd.LookupStats
	neighHeld, neighResumed, fragments                 uint64
}

// publish adds p to c and clears p.
func (p *pending) publish(c *Counters) {
	if p.encapPackets != 0 {
		add(&c.EncapPackets, p.encapPackets)
		add(&c.EncapBytes, p.encapBytes)
	}
	if p.decapPackets != 0 {
		add(&c.DecapPackets, p.decapPackets)
		add(&c.DecapBytes, p.decapBytes)
	}
	for d, n := range p.drops {
		if n != 0 {
			add(&c.drops[d], n)
		}
	}
	for i := range 2 {
		if p.rxPackets[i] != 0 {
			add(&c.RxPackets[i], p.rxPackets[i])
			add(&c.RxBytes[i], p.rxBytes[i])
		}
		if p.txPackets[i] != 0 {
			add(&c.TxPackets[i], p.txPackets[i])
			add(&c.TxBytes[i], p.txBytes[i])
		}
	}
	if p.neighHeld|p.neighResumed|p.fragments != 0 {
		add(&c.NeighHeld, p.neighHeld)
		add(&c.NeighResumed, p.neighResumed)
		add(&c.Fragments, p.fragments)
	}
	if p.acquires|p.suppressed|p.heldSent|p.icmp|p.spd != 0 {
		add(&c.Acquires, p.acquires)
		add(&c.AcquiresSuppressed, p.suppressed)
		add(&c.HeldSent, p.heldSent)
		add(&c.ICMPSent, p.icmp)
		add(&c.SPDLookups, p.spd)
		add(&c.SPDHashedHits, p.spdStats.Hashed)
		add(&c.SPDListHits, p.spdStats.Listed)
		add(&c.SPDListScans, p.spdStats.ListScans)
		add(&c.SPDListEntries, p.spdStats.ListEntries)
	}
	*p = pending{}
}

// Dropped is the number of packets dropped for reason d.
func (c *Counters) Dropped(d Drop) uint64 {
	if d >= numDrops {
		return 0
	}
	return c.drops[d].Load()
}

// CounterSnapshot is a plain copy of Counters.
type CounterSnapshot struct {
	EncapPackets, EncapBytes, DecapPackets, DecapBytes uint64
	Drops                                              [numDrops]uint64
	RxPackets, RxBytes, TxPackets, TxBytes             [2]uint64
	Acquires, AcquiresSuppressed, HeldSent, ICMPSent   uint64
	SPDLookups, SPDHashedHits, SPDListHits             uint64
	SPDListScans, SPDListEntries                       uint64
	NeighHeld, NeighResumed, Fragments                 uint64
}

// Snapshot copies the counters. Each value is exact; together they are
// a moment's view, not a transaction.
func (c *Counters) Snapshot() CounterSnapshot {
	s := CounterSnapshot{
		EncapPackets: c.EncapPackets.Load(),
		EncapBytes:   c.EncapBytes.Load(),
		DecapPackets: c.DecapPackets.Load(),
		DecapBytes:   c.DecapBytes.Load(),
	}
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
	for i := range 2 {
		s.RxPackets[i], s.RxBytes[i] = c.RxPackets[i].Load(), c.RxBytes[i].Load()
		s.TxPackets[i], s.TxBytes[i] = c.TxPackets[i].Load(), c.TxBytes[i].Load()
	}
	s.Acquires, s.AcquiresSuppressed = c.Acquires.Load(), c.AcquiresSuppressed.Load()
	s.HeldSent, s.ICMPSent, s.SPDLookups = c.HeldSent.Load(), c.ICMPSent.Load(), c.SPDLookups.Load()
	s.SPDHashedHits, s.SPDListHits = c.SPDHashedHits.Load(), c.SPDListHits.Load()
	s.SPDListScans, s.SPDListEntries = c.SPDListScans.Load(), c.SPDListEntries.Load()
	s.NeighHeld, s.NeighResumed, s.Fragments = c.NeighHeld.Load(), c.NeighResumed.Load(), c.Fragments.Load()
	return s
}
