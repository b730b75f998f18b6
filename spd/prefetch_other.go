//go:build !amd64 || purego

package spd

import "unsafe"

// prefetch reads a byte of each line of ps: without a prefetch
// instruction, loads in a tight loop still put many misses in flight at
// once, though each holds up retirement until it arrives.
//
//go:noinline
func prefetch(ps []unsafe.Pointer) (x byte) {
	for _, p := range ps {
		x += *(*byte)(p)
	}
	return x
}
