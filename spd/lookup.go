package spd

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

// lookupChunk is how many keys LookupBatch works on at once: enough
// independent loads in flight to overlap most of the cache misses, few
// enough that a chunk rarely overlaps a change.
const lookupChunk = 16

// LookupBatch looks up keys[i] into out[i], as Lookup would, for as many
// keys as out has room for, and returns how many it looked up.
//
// In a table larger than the caches it is faster per key than Lookup: a
// lookup is two dependent cache misses (bucket head, then entry), and
// LookupBatch takes each step for a chunk of keys before the next, so that
// the misses of different keys overlap instead of following one another.
// Each answer is the database's answer at an instant during the call, as
// with Lookup.
func (db *DB) LookupBatch(dir Dir, keys []Key, out []*Entry) int {
	n := min(len(keys), len(out))
	var qs [lookupChunk]query
	var valid, near [lookupChunk]bool
	var heads [lookupChunk]*Entry
	for base := 0; base < n; base += lookupChunk {
		ks := keys[base:min(base+lookupChunk, n)]
		o := out[base : base+len(ks)]
		v := db.ver.Load()
		s := db.cur.Load()
		for i := range ks {
			valid[i] = qs[i].set(dir, &ks[i])
		}
		for i := range ks {
			heads[i] = nil
			if valid[i] {
				heads[i] = s.buckets[s.bucketOfQuery(&qs[i])].Load()
			}
		}
		// A first look at each head entry: its first local word and
		// its flags, at its two ends, on its two cache lines. Loading
		// them here, for all keys at once, is what overlaps the misses;
		// the result lets the match below skip a head that cannot
		// match.
		for i := range ks {
			if e := heads[i]; e != nil {
				near[i] = e.d.flags&flagTag == qs[i].tag && (e.d.l[0]^qs[i].l[0])&prefixMasks[e.d.lbits][0] == 0
			}
		}
		for i := range ks {
			if !valid[i] {
				o[i] = nil
				continue
			}
			e := heads[i]
			if e != nil && !near[i] {
				e = e.next.Load()
			}
			o[i] = s.listedBest(&qs[i], firstMatch(e, &qs[i]))
		}
		if db.ver.Load() != v {
			// A change was published while the chunk was read: answer
			// each key on its own, which Lookup makes consistent.
			for i := range ks {
				o[i] = db.Lookup(dir, &ks[i])
			}
		}
	}
	return n
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
	return s.listedBest(q, firstMatch(s.buckets[s.bucketOfQuery(q)].Load(), q))
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

// listedBest is the best of best and the listed entries for q. The scan
// stops at the first entry that does not come before best.
func (s *state) listedBest(q *query, best *Entry) *Entry {
	l := s.lists[q.tag].Load()
	if l == nil {
		return best
	}
	bound := &unbeatable
	if best != nil {
		bound = &best.d
	}
	list := *l
	for i := range list {
		e := &list[i]
		if !e.d.before(bound) {
			break
		}
		if e.d.matches(q) {
			return e
		}
	}
	return best
}
