package spd

import (
	"cmp"
	"slices"
)

// build lays out a complete new state with thresholds th from the entries
// of old (nil for none) and extra, total of them, and points ids at the
// new copies. Nothing is published: the old state stays as it was, and
// readers go on using it until the caller stores the new one. It returns
// the number of hashed entries.
//
// Building is O(n) and does not degenerate when many policies share a
// bucket: the hashed entries are counting-sorted by bucket into one slab,
// so that each bucket's chain is a run of neighbouring entries, and each
// run is sorted by (priority, insertion). Linking them one by one instead
// would be quadratic in the length of a bucket, which thresholds of 0 make
// as long as the whole direction.
func build(th Thresholds, old *state, extra []entryData, total int, ids *handles) (s *state, hashed int) {
	hsrc := make([]*entryData, 0, total)
	var lsrc [numTags][]*entryData
	add := func(d *entryData) {
		if th.hashes(d) {
			hsrc = append(hsrc, d)
		} else {
			lsrc[d.tag()] = append(lsrc[d.tag()], d)
		}
	}
	if old != nil {
		old.forEach(func(e *Entry) { add(&e.d) })
	}
	for i := range extra {
		add(&extra[i])
	}

	// The hash key stays that of the old table, so that a table twice the
	// size splits each old bucket in two in place: the copy below then
	// reads the old slab in order instead of all over it.
	key := newHashKey()
	if old != nil {
		key = old.key
	}
	s = newState(th, key, len(hsrc))

	// Counting sort of the hashed entries by bucket: start[b] is where
	// bucket b's run begins in the slab.
	bucket := make([]uint32, len(hsrc))
	start := make([]uint32, len(s.buckets)+1)
	for i, d := range hsrc {
		b := uint32(s.bucketOf(d))
		bucket[i] = b
		start[b+1]++
	}
	for b := 1; b < len(start); b++ {
		start[b] += start[b-1]
	}
	order := make([]uint32, len(hsrc))
	fill := slices.Clone(start[:len(s.buckets)])
	for i, b := range bucket {
		order[fill[b]] = uint32(i)
		fill[b]++
	}
	byOrder := func(i, j uint32) int { return compareEntries(hsrc[i], hsrc[j]) }
	slab := make([]Entry, len(hsrc))
	for b := range s.buckets {
		lo, hi := start[b], start[b+1]
		if lo == hi {
			continue
		}
		run := order[lo:hi]
		if len(run) > 1 {
			slices.SortFunc(run, byOrder)
		}
		for k, i := range run {
			e := &slab[int(lo)+k]
			e.d = *hsrc[i]
			ids.set(e.d.id, e)
			if k > 0 {
				slab[int(lo)+k-1].next.Store(e)
			}
		}
		s.buckets[b].Store(&slab[lo])
	}

	for tag, src := range lsrc {
		if len(src) == 0 {
			continue
		}
		slices.SortFunc(src, compareEntries)
		l := make([]Entry, len(src))
		for i, d := range src {
			l[i].d = *d
			ids.set(d.id, &l[i])
		}
		s.lists[tag].Store(&l)
	}
	return s, len(hsrc)
}

func compareEntries(a, b *entryData) int {
	if c := cmp.Compare(a.prio, b.prio); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}
