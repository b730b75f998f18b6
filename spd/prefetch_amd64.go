//go:build amd64 && !purego

package spd

import "unsafe"

// prefetch asks the CPU to bring the cache lines of ps into the caches,
// without waiting for them. Go has no prefetch intrinsic outside the
// runtime, so this is PREFETCHT0 in assembly: unlike a load, a prefetch
// retires at once, so a miss does not hold up the instructions after it,
// and a batch can have all its misses in flight while it computes.
//
//go:noescape
func prefetch(ps []unsafe.Pointer)
