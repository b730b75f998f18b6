package fib

import (
	"math/bits"
	"net/netip"
)

// key128 holds an address as a 128-bit big-endian number, so that one LPM
// implementation serves both families: an IPv4 address sits in the top 32
// bits of hi, where a prefix length of up to 32 masks it the same way.
type key128 struct{ hi, lo uint64 }

func keyOf(a netip.Addr) key128 {
	if a.Is4() {
		b := a.As4()
		return key128{hi: uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32}
	}
	b := a.As16()
	return key128{
		hi: uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
			uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7]),
		lo: uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
			uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15]),
	}
}

// masks returns the masks that keep the first plen bits of a key128.
// Shifts of 64 or more give 0 in Go, so no length needs a special case.
func masks(plen int) (hi, lo uint64) {
	hi = ^(^uint64(0) >> uint(min(plen, 64)))
	if plen > 64 {
		lo = ^(^uint64(0) >> uint(plen-64))
	}
	return hi, lo
}

// fmix64 is MurmurHash3's finalizer: every input bit flips each output bit
// with probability about one half. ECMP and Resolve's rate limiter take
// the low bits of its result.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hash128 hashes a 128-bit key and a small discriminator (a prefix length,
// an interface index) for the open-addressing tables, which index with its
// top bits. It is Fibonacci hashing (Knuth, TAOCP 6.4): the top bits of a
// product by 2^64/phi depend on every bit of the multiplicand, and spread
// keys that differ in a few bits, as neighbouring prefixes do, evenly; one
// multiply for hi, one to fold lo in, one for the discriminator, where a
// full mixer such as fmix64 would cost twice as much per probe.
func hash128(hi, lo, extra uint64) uint64 {
	return (hi ^ bits.RotateLeft64(lo*0x9e3779b97f4a7c15, 32) ^ extra*0xff51afd7ed558ccd) * 0x9e3779b97f4a7c15
}

// level is one prefix length present in an lpm, with its masks.
type level struct {
	hiMask, loMask uint64
	plen           uint8
}

// slot is one entry of the open-addressing table: a prefix or a marker at
// one length. plen is stored plus one so that the zero slot means empty.
type slot struct {
	hi, lo uint64
	val    int32 // best matching real prefix (an index into routes), or -1
	plen1  uint8
}

// lpm is a longest-prefix-match index over the prefixes of one family: a
// binary search on prefix lengths (Waldvogel, Varghese, Turner and
// Plattner, "Scalable High Speed IP Routing Lookups", SIGCOMM 1997) in one
// hash table keyed by (masked address, length).
//
// A lookup probes the middle one of the lengths present; a hit means that
// the answer is at that length or longer, a miss that it is shorter. For a
// miss to prove that nothing longer matches, every prefix leaves a marker
// (its own bits cut short) at each length where the search towards its
// length turns longer; and since a marker can lead the search on to find
// nothing, every entry carries the best real prefix that matches its own
// bits at its length or shorter, computed when the table is built. The
// answer is the value of the last hit: at most ceil(log2(lengths+1))
// probes, five for any IPv4 table and eight for IPv6, against one probe per
// length present for a scan from the longest length down.
//
// An lpm is immutable once built; lookups read it without synchronization.
type lpm struct {
	levels []level // ascending by plen
	slots  []slot  // power of two, at most half full
	mask   uint64  // len(slots) - 1
	shift  uint8   // 64 - log2(len(slots)): hashes index with their top bits
}

// lpmEntry is a prefix to index and the value a match returns.
type lpmEntry struct {
	key  key128 // masked to plen
	plen uint8
	val  int32
}

// find returns the value stored for (hi, lo, plen) and whether there is one.
func (t *lpm) find(hi, lo uint64, plen uint8) (int32, bool) {
	i := hash128(hi, lo, uint64(plen)) >> t.shift
	for {
		s := &t.slots[i]
		if s.plen1 == 0 {
			return -1, false
		}
		if s.hi == hi && s.lo == lo && s.plen1 == plen+1 {
			return s.val, true
		}
		i = (i + 1) & t.mask
	}
}

// lookup returns the value of the longest prefix that contains k, or -1.
func (t *lpm) lookup(k key128) int32 {
	best := int32(-1)
	lo, hi := 0, len(t.levels)-1
	for lo <= hi {
		mid := int(uint(lo+hi) >> 1)
		lv := &t.levels[mid]
		if v, ok := t.find(k.hi&lv.hiMask, k.lo&lv.loMask, lv.plen); ok {
			// The entry's value is the best match at its length or
			// shorter, so it supersedes any earlier, shorter hit.
			best = v
			lo = mid + 1
		} else {
			hi = mid - 1
		}
	}
	return best
}

// buildLPM indexes entries, whose keys must be masked to their lengths and
// distinct. It costs O(n log L) hash inserts for n prefixes of L distinct
// lengths, and O(n L log L) probes to give the markers their best matches.
func buildLPM(entries []lpmEntry) lpm {
	type ek struct {
		key  key128
		plen uint8
	}
	var present [129]bool
	for _, e := range entries {
		present[e.plen] = true
	}
	var t lpm
	for l := range present {
		if present[l] {
			h, lo := masks(l)
			t.levels = append(t.levels, level{hiMask: h, loMask: lo, plen: uint8(l)})
		}
	}
	idx := make([]int, 129) // plen -> index in levels
	for i, lv := range t.levels {
		idx[lv.plen] = i
	}

	exact := make(map[ek]int32, len(entries))
	for _, e := range entries {
		exact[ek{e.key, e.plen}] = e.val
	}
	// Markers: along the search path towards each prefix's length. The
	// slice keeps them in the order they were found, so that equal
	// inputs build equal tables.
	seen := make(map[ek]struct{})
	var markers []ek
	for _, e := range entries {
		target := idx[e.plen]
		lo, hi := 0, len(t.levels)-1
		for lo <= hi {
			mid := int(uint(lo+hi) >> 1)
			if mid == target {
				break
			}
			if mid < target {
				lv := t.levels[mid]
				k := ek{key128{e.key.hi & lv.hiMask, e.key.lo & lv.loMask}, lv.plen}
				if _, ok := exact[k]; !ok {
					if _, ok := seen[k]; !ok {
						seen[k] = struct{}{}
						markers = append(markers, k)
					}
				}
				lo = mid + 1
			} else {
				hi = mid - 1
			}
		}
	}

	n := len(entries) + len(markers)
	size := 8
	for size < 2*n {
		size <<= 1
	}
	t.slots = make([]slot, size)
	t.mask = uint64(size - 1)
	t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	insert := func(k ek, v int32) {
		i := hash128(k.key.hi, k.key.lo, uint64(k.plen)) >> t.shift
		for t.slots[i].plen1 != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = slot{hi: k.key.hi, lo: k.key.lo, val: v, plen1: k.plen + 1}
	}
	for _, e := range entries {
		insert(ek{e.key, e.plen}, e.val)
	}
	for _, k := range markers {
		// A marker's best match: the longest real prefix, strictly
		// shorter than the marker, that contains its bits.
		best := int32(-1)
		for i := idx[k.plen] - 1; i >= 0; i-- {
			lv := t.levels[i]
			if v, ok := exact[ek{key128{k.key.hi & lv.hiMask, k.key.lo & lv.loMask}, lv.plen}]; ok {
				best = v
				break
			}
		}
		insert(k, best)
	}
	return t
}
