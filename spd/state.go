package spd

import (
	"math/bits"
	"sync/atomic"
)

// minBuckets is the smallest table: an empty database costs a few hundred
// bytes.
const minBuckets = 16

// state is one published layout of the database: a hash table and the
// unhashed lists, with the thresholds that decided between them. Readers
// reach it through DB.cur.
//
// Everything in a state is fixed when it is published except the bucket
// heads, the chains' next pointers and the list pointers, each of which a
// writer changes with one atomic store. A rebuild (growth, shrinking,
// new thresholds, a bulk load) makes a new state instead, so a reader that
// still holds the old one sees it whole.
type state struct {
	// th and masks belong to the table: a lookup hashes with the masks of
	// the state it found the table in, never with newer thresholds.
	th    Thresholds
	masks [2]struct{ l, r [2]uint64 } // per family
	key   hashKey
	mask  uint64 // len(buckets)-1
	// buckets are chains of entries in (priority, insertion) order.
	// Entries of different keys share a chain when their hashes collide,
	// and a policy whose prefixes are longer than the thresholds is found
	// by the bits the thresholds keep, so a lookup matches every entry in
	// full.
	buckets []atomic.Pointer[Entry]
	// lists are the unhashed policies of each direction and family in
	// (priority, insertion) order. A change replaces a list with a new
	// copy: lists are meant to be short, and a lookup scans one as a flat
	// array.
	lists [numTags]atomic.Pointer[[]Entry]
}

// bucketsFor is the table size for n hashed policies: the smallest power
// of two with at least two buckets per policy. The table grows when it
// holds more than one policy per two buckets and shrinks when it holds
// fewer than one per eight: it has two to four buckets per policy after
// each rebuild, and never more than eight.
//
// Fewer buckets would do, but every entry that a lookup passes over before
// its match is one more cache miss. In a large table of policies of equal
// priority, more than a third of the lookups find another policy first in
// their bucket with one bucket per policy, about a fifth with two. That
// makes LookupBatch in a table larger than the caches a sixth faster, for
// 8 more bytes per policy (bench/RESULTS.md).
func bucketsFor(n int) int {
	if n <= minBuckets/2 {
		return minBuckets
	}
	return 1 << bits.Len(uint(2*n-1))
}

// overloaded reports whether a table of nb buckets holding n hashed
// policies should grow.
func overloaded(n, nb int) bool { return n > nb/2 }

// underloaded reports whether it should shrink.
func underloaded(n, nb int) bool { return nb > minBuckets && n < nb/8 }

func newState(th Thresholds, key hashKey, nHashed int) *state {
	s := &state{th: th, key: key}
	for fam := uint8(0); fam < 2; fam++ {
		l, r := th.bits(fam)
		s.masks[fam].l, s.masks[fam].r = prefixMask(l), prefixMask(r)
	}
	s.buckets = make([]atomic.Pointer[Entry], bucketsFor(nHashed))
	s.mask = uint64(len(s.buckets) - 1)
	return s
}

// hashes reports whether th puts d in the hash table.
func (th Thresholds) hashes(d *entryData) bool {
	l, r := th.bits(d.tag() & 1)
	return d.lbits >= l && d.rbits >= r
}

// bucketOf is the index of the bucket of a hashed entry.
func (s *state) bucketOf(d *entryData) uint64 {
	m := &s.masks[d.tag()&1]
	h := s.key.sum(d.tag(),
		[2]uint64{d.l[0] & m.l[0], d.l[1] & m.l[1]},
		[2]uint64{d.r[0] & m.r[0], d.r[1] & m.r[1]})
	return h & s.mask
}

// link puts the unpublished entry e into its bucket in order; the last
// store publishes it. Writers only.
func (s *state) link(e *Entry) {
	p := &s.buckets[s.bucketOf(&e.d)]
	for n := p.Load(); n != nil && n.d.before(&e.d); n = p.Load() {
		p = &n.next
	}
	e.next.Store(p.Load())
	p.Store(e)
}

// unlink takes e out of its bucket with one store. e keeps its next
// pointer, so a reader standing on e walks on into the live chain. Writers
// only.
func (s *state) unlink(e *Entry) bool {
	p := &s.buckets[s.bucketOf(&e.d)]
	for n := p.Load(); n != nil; n = p.Load() {
		if n == e {
			p.Store(e.next.Load())
			return true
		}
		p = &n.next
	}
	return false
}

// list is the unhashed list of tag, or nil when it is empty.
func (s *state) list(tag uint8) []Entry {
	if l := s.lists[tag].Load(); l != nil {
		return *l
	}
	return nil
}

// forEach calls f on every entry, hashed and listed. Writers only.
func (s *state) forEach(f func(*Entry)) {
	for i := range s.buckets {
		for e := s.buckets[i].Load(); e != nil; e = e.next.Load() {
			f(e)
		}
	}
	for tag := range s.lists {
		l := s.list(uint8(tag))
		for i := range l {
			f(&l[i])
		}
	}
}
