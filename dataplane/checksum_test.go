package dataplane

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// refSum is RFC 1071's reference algorithm, 16 bits at a time.
func refSum(b []byte) uint16 {
	var acc uint32
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc>>16 != 0 {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

func TestSumMatchesRFC1071(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 300; n++ {
		for range 20 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
				if r.IntN(4) == 0 {
					b[i] = 0xff // carries
				}
			}
			got, want := fold(sum(b, 0)), refSum(b)
			// 0x0000 and 0xffff are the same number in one's complement.
			if got != want && !(got|want == 0xffff && got&want == 0) {
				t.Fatalf("len %d: sum %#04x, RFC 1071 says %#04x", n, got, want)
			}
		}
	}
	// A known header: the IPv4 example of RFC 1071 section 3 is not a full
	// header, so use Wikipedia's widely quoted one, checksum 0xb861.
	h := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if c := ^fold(sum(h, 0)); c != 0xb861 {
		t.Fatalf("IPv4 header checksum %#04x, want 0xb861", c)
	}
}

func BenchmarkSum(b *testing.B) {
	for _, n := range []int{20, 1400} {
		buf := make([]byte, n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				sum(buf, 0)
			}
		})
	}
}

// TestTestPacketsAreValid: the UDP packets the tests build carry correct
// checksums, so that a checksum Encap or Decap broke would show.
func TestTestPacketsAreValid(t *testing.T) {
	p := udpPacket(host6a, host6b, 33, 0)
	u := p[ipv6Len:]
	acc := sum(p[ipv6SrcOff:ipv6DstOff+16], uint64(len(u))+protoUDP)
	if fold(sum(u, acc)) != 0xffff || u[udpCsumOff]|u[udpCsumOff+1] == 0 {
		t.Fatalf("IPv6 UDP checksum %x does not verify", u[udpCsumOff:udpCsumOff+2])
	}
	p = udpPacket(host4a, host4b, 33, 0)
	if fold(sum(p[:ipv4MinLen], 0)) != 0xffff {
		t.Fatal("IPv4 header checksum does not verify")
	}
}
