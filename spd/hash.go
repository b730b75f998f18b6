package spd

import (
	"math/bits"
	"math/rand/v2"
)

// prefixMask is the mask of the high-order n bits of a 128-bit address in
// two words. Shifts by 64 or more give 0 in Go, which makes both words
// come out right without a branch.
func prefixMask(n uint8) [2]uint64 {
	return [2]uint64{^(^uint64(0) >> n), ^(^uint64(0) >> (max(n, 64) - 64))}
}

// prefixMasks[n] is prefixMask(n), for matching: one load from a table
// that stays in L1 is cheaper than computing the two masks of each entry
// a lookup looks at. It has 256 rows, so that indexing it with a uint8
// needs no bounds check; lengths above 128 do not occur.
var prefixMasks = func() (t [256][2]uint64) {
	for n := range t {
		t[n] = prefixMask(uint8(min(n, 128)))
	}
	return t
}()

// hashKey keys the bucket hash. It is drawn at random for each database,
// so that whoever chooses traffic selectors (a peer narrowing them in IKE)
// cannot aim many policies at one bucket of every gateway.
type hashKey [4]uint64

func newHashKey() hashKey {
	return hashKey{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()}
}

// mix folds the 128-bit product of a and b, the multiply step of wyhash:
// two multiplications hash the 256 bits of a bucket key in a few
// nanoseconds without allocating, which hash/maphash cannot promise.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// sum hashes a bucket key: the tag (direction and family) and the local
// and remote addresses already masked to the thresholds.
func (k *hashKey) sum(tag uint8, l, r [2]uint64) uint64 {
	h := mix(l[0]^k[0], r[0]^k[1]^uint64(tag))
	return mix(h^l[1]^k[2], r[1]^k[3])
}
