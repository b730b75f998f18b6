package dataplane

import (
	"encoding/binary"
	"math/bits"
)

// sum adds b to the one's complement sum acc of big-endian 16-bit words
// (RFC 1071). The sum of 16-bit words does not depend on the order the
// words are added in, nor on their byte order if the result is swapped back
// (RFC 1071 section 2), so b is added as little-endian 64-bit words with
// carries, four to a loop, and folded and swapped once at the end.
func sum(b []byte, acc uint64) uint64 {
	var s, c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	var tail uint64
	switch len(b) {
	case 7:
		tail = uint64(b[6]) << 48
		fallthrough
	case 6:
		tail |= uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint16(b[4:]))<<32
	case 5:
		tail = uint64(binary.LittleEndian.Uint32(b)) | uint64(b[4])<<32
	case 4:
		tail = uint64(binary.LittleEndian.Uint32(b))
	case 3:
		tail = uint64(b[2]) << 16
		fallthrough
	case 2:
		tail |= uint64(binary.LittleEndian.Uint16(b))
	case 1:
		tail = uint64(b[0])
	}
	s, c = bits.Add64(s, tail, c)
	s, c = bits.Add64(s, c, 0)
	s += c
	le := fold(s)
	return acc + uint64(bits.ReverseBytes16(le))
}

// fold reduces a 64-bit one's complement sum to 16 bits.
func fold(acc uint64) uint16 {
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	return uint16(acc)
}
