package afxdp

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Test packet builders. Checksums: IPv4 header checksums are right; UDP
// checksums are zero (the packets built here go to AF_XDP sockets or
// through BPF_PROG_RUN, never to a kernel UDP socket).

var (
	macA = net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x01}
	macB = net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x02}
)

func ethFrame(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	b := make([]byte, 14, 14+len(payload))
	copy(b, dst)
	copy(b[6:], src)
	binary.BigEndian.PutUint16(b[12:], etherType)
	return append(b, payload...)
}

// ipv4Packet builds an IPv4 packet; options must be a multiple of 4 bytes.
func ipv4Packet(src, dst netip.Addr, proto byte, options, payload []byte) []byte {
	hl := 20 + len(options)
	b := make([]byte, hl, hl+len(payload))
	b[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(payload)))
	b[8] = 64
	b[9] = proto
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], options)
	var sum uint32
	for i := 0; i < hl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	return append(b, payload...)
}

func ipv6Packet(src, dst netip.Addr, next byte, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = next
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

func udpDatagram(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

// espPayload is an ESP header with spi and seq and some opaque bytes.
func espPayload(spi, seq uint32, n int) []byte {
	b := make([]byte, 8+n)
	binary.BigEndian.PutUint32(b, spi)
	binary.BigEndian.PutUint32(b[4:], seq)
	for i := range n {
		b[8+i] = byte(i)
	}
	return b
}

// ethIPv4 and ethIPv6 wrap an IP packet from macB to macA.
func ethIPv4(p []byte) []byte { return ethFrame(macA, macB, 0x0800, p) }
func ethIPv6(p []byte) []byte { return ethFrame(macA, macB, 0x86dd, p) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
