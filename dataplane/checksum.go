package dataplane

import "encoding/binary"

// sum adds b to the one's complement sum acc as 16-bit big-endian words,
// eight bytes at a time: a 64-bit accumulator with end-around carry folds to
// the same 16-bit result (RFC 1071 section 2).
func sum(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		acc += v
		if acc < v {
			acc++
		}
		b = b[8:]
	}
	if len(b) >= 4 {
		v := uint64(binary.BigEndian.Uint32(b))
		acc += v
		if acc < v {
			acc++
		}
		b = b[4:]
	}
	if len(b) >= 2 {
		v := uint64(binary.BigEndian.Uint16(b))
		acc += v
		if acc < v {
			acc++
		}
		b = b[2:]
	}
	if len(b) == 1 {
		v := uint64(b[0]) << 8
		acc += v
		if acc < v {
			acc++
		}
	}
	return acc
}

// fold reduces a 64-bit one's complement sum to 16 bits.
func fold(acc uint64) uint16 {
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	return uint16(acc)
}
