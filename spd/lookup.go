package spd

import (
	"sync/atomic"
	"unsafe"
)

// Lookup returns the best policy of direction dir for the packet k: of the
// policies that match it, the one with the lowest priority value, and of
// those the one inserted first. It returns nil when none matches, or when
// k's addresses are missing or of two families.
//
// Lookup takes no lock and does not allocate. Its answer is the
// database's answer at one instant during the call, however writers
// change it meanwhile.
func (db *DB) Lookup(dir Dir, k *Key) *Entry {
	var q query
	if !q.set(dir, k) {
		return nil
	}
	// A lookup reads two places a writer may change, the bucket and the
	// list, and a lookup that read the bucket before one change and the
	// list after the next could miss both halves of a make-before-break
	// replacement. Every change is one atomic store followed by an
	// increment of ver, so equal readings of ver around the lookup leave
	// room for at most one store in between: all of it was seen or none.
	// Otherwise read again. Writers take far longer per change than a
	// lookup takes, so that is rare, and happens only because a writer
	// made progress.
	for {
		v := db.ver.Load()
		e := db.cur.Load().lookup(&q)
		if db.ver.Load() == v {
			return e
		}
	}
}

// lookupChunk is how many keys LookupBatch works on at once: a worker's
// batch (dataplane.Batch). The more keys, the more cache misses in flight
// at once; but a chunk is read in one state, so it should rarely overlap a
// change, and its scratch space lives on the stack.
const lookupChunk = 64

// noBucket is the bucket of a key that no policy can match: always empty,
// so that such keys go through the same steps as the others.
var noBucket atomic.Pointer[Entry]

// LookupBatch looks up keys[i] into out[i], as Lookup would, for as many
// keys as out has room for, and returns how many it looked up.
//
// In a table larger than the caches it is much faster per key than
// Lookup. A lookup is two dependent cache misses, bucket then entry, plus
// a third when the bucket's first entry is not the match. Lookup takes
// them one after the other; LookupBatch takes each step for a whole chunk
// of keys before the next, and prefetches the lines of every key's next
// step first, so that the misses of a chunk's keys overlap. Each answer is
// the database's answer at an instant during the call, as with Lookup.
func (db *DB) LookupBatch(dir Dir, keys []Key, out []*Entry) int {
	return db.LookupBatchStats(dir, keys, out, nil)
}

// LookupStats counts where the lookups of LookupBatchStats found their
// answers, for a data plane's per-core counters: the hash table, the
// unhashed list, or neither (the rest of the lookups).
type LookupStats struct {
	// Hashed and Listed count answers found in the hash table and in the
	// list.
	Hashed, Listed uint64
	// ListScans counts lookups that compared the packet with at least one
	// listed policy; ListEntries counts those comparisons. A
	// configuration that keeps its policies hashed has both at 0.
	ListScans, ListEntries uint64
}

// LookupBatchStats is LookupBatch, adding to st (when not nil) where the
// answers came from. A chunk of keys that met a concurrent change and was
// looked up again is counted as first read.
func (db *DB) LookupBatchStats(dir Dir, keys []Key, out []*Entry, st *LookupStats) int {
	n := min(len(keys), len(out))
	var c batch
	c.st = st
	for base := 0; base < n; base += lookupChunk {
		ks := keys[base:min(base+lookupChunk, n)]
		db.lookupChunk(dir, ks, out[base:base+len(ks)], &c)
	}
	return n
}

// batch is LookupBatch's scratch space for one chunk.
type batch struct {
	qs    [lookupChunk]query
	valid [lookupChunk]bool
	// slots are the keys' buckets; cand the entries they are at in their
	// chains, or nil when done.
	slots [lookupChunk]*atomic.Pointer[Entry]
	cand  [lookupChunk]*Entry
	// lines are addresses to prefetch: an entry's first and last bytes
	// are on its two cache lines.
	lines [2 * lookupChunk]unsafe.Pointer
	// st is where to count, or nil.
	st *LookupStats
}

// lookupChunk looks up keys, at most lookupChunk of them, into out.
func (db *DB) lookupChunk(dir Dir, keys []Key, out []*Entry, c *batch) {
	v := db.ver.Load()
	s := db.cur.Load()
	// Step 1: the buckets. Hashing all the keys first gives the
	// prefetches of the bucket heads time to arrive before step 2
	// reads them.
	for i := range keys {
		q := &c.qs[i]
		c.valid[i] = q.set(dir, &keys[i])
		c.slots[i] = &noBucket
		if c.valid[i] {
			c.slots[i] = &s.buckets[s.bucketOfQuery(q)]
		}
		c.lines[i] = unsafe.Pointer(c.slots[i])
	}
	prefetch(c.lines[:len(keys)])
	// Step 2: the chains' first entries.
	m := 0
	for i := range keys {
		e := c.slots[i].Load()
		c.cand[i] = e
		if e != nil {
			c.lines[m], c.lines[m+1] = unsafe.Pointer(e), unsafe.Pointer(&e.d.flags)
			m += 2
		}
	}
	prefetch(c.lines[:m])
	// Step 3: most first entries match. For those that do not, the
	// next entries.
	m = 0
	for i := range keys {
		out[i] = nil
		e := c.cand[i]
		if e == nil {
			continue
		}
		if e.d.matches(&c.qs[i]) {
			out[i], c.cand[i] = e, nil
			continue
		}
		e = e.next.Load()
		c.cand[i] = e
		if e != nil {
			c.lines[m], c.lines[m+1] = unsafe.Pointer(e), unsafe.Pointer(&e.d.flags)
			m += 2
		}
	}
	prefetch(c.lines[:m])
	// Step 4: the rest of the chains, and the lists.
	var found, listed, scans, scanned int
	for i := range keys {
		if !c.valid[i] {
			continue
		}
		if c.cand[i] != nil {
			out[i] = firstMatch(c.cand[i], &c.qs[i])
		}
		hashed := out[i]
		var k int
		out[i], k = s.listedBest(&c.qs[i], hashed)
		found += btoi(out[i] != nil)
		listed += btoi(out[i] != hashed)
		scans += btoi(k != 0)
		scanned += k
	}
	if st := c.st; st != nil {
		st.Hashed += uint64(found - listed)
		st.Listed += uint64(listed)
		st.ListScans += uint64(scans)
		st.ListEntries += uint64(scanned)
	}
	if db.ver.Load() != v {
		// A change was published while the chunk was read: answer
		// each key on its own, which Lookup makes consistent.
		for i := range keys {
			out[i] = db.Lookup(dir, &keys[i])
		}
	}
}

// bucketOfQuery is the index of the bucket that holds every hashed entry
// that can match q.
func (s *state) bucketOfQuery(q *query) uint64 {
	m := &s.masks[q.fam]
	h := s.key.sum(q.tag,
		[2]uint64{q.l[0] & m.l[0], q.l[1] & m.l[1]},
		[2]uint64{q.r[0] & m.r[0], q.r[1] & m.r[1]})
	return h & s.mask
}

// lookup is the best entry for q in this state, or nil.
//
// Every hashed policy that matches q has q's addresses in its prefixes, and
// those prefixes are at least as long as the thresholds, so q masked to the
// thresholds is its bucket key: one bucket holds all the hashed
// candidates, and the first match in the bucket's order is the best of
// them. A listed entry can beat it only by coming before it in the same
// order.
func (s *state) lookup(q *query) *Entry {
	e, _ := s.listedBest(q, firstMatch(s.buckets[s.bucketOfQuery(q)].Load(), q))
	return e
}

// firstMatch is the first entry for q in the chain that starts at e.
func firstMatch(e *Entry, q *query) *Entry {
	for ; e != nil; e = e.next.Load() {
		if e.d.matches(q) {
			return e
		}
	}
	return nil
}

// unbeatable comes after every entry in (priority, insertion) order, even
// one of the largest priority: no entry is inserted 2^64-1st.
var unbeatable = entryData{prio: ^uint32(0), seq: ^uint64(0)}

// listedBest is the best of best and the listed entries for q, and how
// many listed entries it compared with q. The scan stops at the first
// entry that does not come before best.
func (s *state) listedBest(q *query, best *Entry) (*Entry, int) {
	l := s.lists[q.tag].Load()
	if l == nil {
		return best, 0
	}
	bound := &unbeatable
	if best != nil {
		bound = &best.d
	}
	list := *l
	for i := range list {
		e := &list[i]
		if !e.d.before(bound) {
			return best, i
		}
		if e.d.matches(q) {
			return e, i + 1
		}
	}
	return best, len(list)
}
