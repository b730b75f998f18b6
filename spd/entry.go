package spd

import "sync/atomic"

// ID names an installed policy. It is never 0, and once its policy is
// deleted it names nothing, not a later policy. IDs are not in insertion
// order; the database keeps that order separately.
type ID uint64

// Address families, as they index per-family arrays.
const (
	fam4 uint8 = 0
	fam6 uint8 = 1
)

// A tag packs a direction and a family: a lookup compares it first, and it
// indexes the unhashed lists.
const numTags = int(numDirs) * 2

func tagOf(d Dir, fam uint8) uint8 { return uint8(d)<<1 | fam }

// An entry's flags byte holds its tag, its action and whether it is a
// trap, so that the entry fits in 80 bytes.
const (
	flagTag         = 0x07
	flagActionShift = 3
	flagAction      = 0x03 << flagActionShift
	flagTrap        = 0x20
)

// Entry is an installed policy as lookups see it. What Lookup returns is
// immutable and stays valid after the policy is deleted, so a worker may
// keep it for the rest of a batch.
type Entry struct {
	// next chains the entries of one hash bucket in (priority, insertion)
	// order.
	// A writer changes it with one atomic store while readers walk the
	// chain; an unlinked entry keeps its next, so that a reader standing
	// on it walks on into the live chain. Entries of the unhashed lists
	// do not use it.
	next atomic.Pointer[Entry]
	d    entryData
}

// entryData is a policy in the compact form that matching wants: 72 bytes,
// 80 with next, one allocation size class. It is copied by value, which
// Entry, holding an atomic, cannot be.
type entryData struct {
	// l and r are the local and remote prefixes, masked, as 128-bit
	// numbers (IPv4 in the top 32 bits of l[0] and r[0]).
	l, r [2]uint64
	// seq is the insertion order, which breaks ties in priority.
	seq uint64
	id  ID
	sa  uint64
	// prio and seq order entries in buckets and lists.
	prio uint32
	// Ports as a low end and a width, so that a range check is one
	// unsigned comparison; any port is 0 and 0xffff.
	lpLo, lpSpan, rpLo, rpSpan uint16
	lbits, rbits               uint8
	proto                      uint8
	flags                      uint8
}

func (d *entryData) tag() uint8 { return d.flags & flagTag }

// ID is the policy's ID, as Insert returned it.
func (e *Entry) ID() ID { return e.d.id }

// Action is the policy's action.
func (e *Entry) Action() Action { return Action(e.d.flags&flagAction) >> flagActionShift }

// SA is the policy's reference to its SA or SA template.
func (e *Entry) SA() uint64 { return e.d.sa }

// Trap reports whether a packet matching the policy while it has no SA
// should raise an acquire.
func (e *Entry) Trap() bool { return e.d.flags&flagTrap != 0 }

// Priority is the policy's priority.
func (e *Entry) Priority() uint32 { return e.d.prio }

// Dir is the policy's direction.
func (e *Entry) Dir() Dir { return Dir(e.d.tag() >> 1) }

// Policy rebuilds the policy as it was inserted, with its prefixes masked
// and a full port range shown as any. It does not allocate.
func (e *Entry) Policy() Policy {
	d := &e.d
	fam := d.tag() & 1
	return Policy{
		Dir: e.Dir(),
		Selector: Selector{
			Local:       prefixOf(fam, d.l, d.lbits),
			Remote:      prefixOf(fam, d.r, d.rbits),
			Proto:       d.proto,
			LocalPorts:  rangeOf(d.lpLo, d.lpSpan),
			RemotePorts: rangeOf(d.rpLo, d.rpSpan),
		},
		Priority: d.prio,
		Action:   e.Action(),
		Trap:     e.Trap(),
		SA:       d.sa,
	}
}

func rangeOf(lo, span uint16) PortRange {
	if lo == 0 && span == 0xffff {
		return PortRange{}
	}
	return Ports(lo, lo+span)
}

// before is the order of the buckets, the lists and the reference scan:
// priority, then insertion.
func (d *entryData) before(o *entryData) bool {
	return d.prio < o.prio || d.prio == o.prio && d.seq < o.seq
}

// matches reports whether the packet q falls under the entry. The
// direction and family are in the tag; the addresses are compared in one
// expression, the rest only for entries whose addresses match.
func (d *entryData) matches(q *query) bool {
	lm, rm := &prefixMasks[d.lbits], &prefixMasks[d.rbits]
	if d.flags&flagTag != q.tag ||
		(q.l[0]^d.l[0])&lm[0]|(q.l[1]^d.l[1])&lm[1]|(q.r[0]^d.r[0])&rm[0]|(q.r[1]^d.r[1])&rm[1] != 0 {
		return false
	}
	return (d.proto == 0 || d.proto == q.proto) && q.lp-d.lpLo <= d.lpSpan && q.rp-d.rpLo <= d.rpSpan
}
