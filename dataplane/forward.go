package dataplane

import (
	"encoding/binary"
	"net/netip"

	"github.com/espx/espx/spd"
)

// Ethernet framing as the workers see it: AF_XDP hands over whole frames.
const (
	ethLen      = 14
	ethTypeOff  = 12
	ethTypeIPv4 = 0x0800
	ethTypeIPv6 = 0x86dd
)

// More IP protocols, for flow keys and ICMP.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoSCTP   = 132
	protoICMPv6 = 58
)

// stripEthernet moves f past its Ethernet header, checking that the
// EtherType agrees with the IP version that follows.
func stripEthernet(f *Frame) Drop {
	if f.Len < ethLen+ipv4MinLen {
		return DropHdrError
	}
	p := f.Data()
	et := binary.BigEndian.Uint16(p[ethTypeOff:])
	v := p[ethLen] >> 4
	if et == ethTypeIPv4 && v != 4 || et == ethTypeIPv6 && v != 6 || et != ethTypeIPv4 && et != ethTypeIPv6 {
		return DropNotIP
	}
	f.Off += ethLen
	f.Len -= ethLen
	return DropNone
}

// pushEthernet writes an Ethernet header for nh in front of f's IP packet.
func pushEthernet(f *Frame, nh *NextHop) Drop {
	if f.Off < ethLen {
		return DropNoRoom
	}
	f.Off -= ethLen
	f.Len += ethLen
	h := f.Buf[f.Off : f.Off+ethLen]
	copy(h[0:6], nh.DstMAC[:])
	copy(h[6:12], nh.SrcMAC[:])
	et := uint16(ethTypeIPv4)
	if f.Buf[f.Off+ethLen]>>4 == 6 {
		et = ethTypeIPv6
	}
	binary.BigEndian.PutUint16(h[ethTypeOff:], et)
	return DropNone
}

// flowKey fills k from the IP packet p for an SPD lookup: addresses,
// protocol and, for the first fragment or an unfragmented packet, the
// ports (TCP, UDP, SCTP) or the ICMP type and code. IPv6 extension
// headers are skipped to find the upper-layer protocol.
func flowKey(p []byte, k *spd.Key) Drop {
	*k = spd.Key{}
	if len(p) < ipv4MinLen {
		return DropHdrError
	}
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		h := ipv4(p)
		hl, n := h.headerLen(), h.totalLen()
		if hl < ipv4MinLen || n < hl || n > len(p) {
			return DropHdrError
		}
		k.Src = netip.AddrFrom4([4]byte(p[ipv4SrcOff : ipv4SrcOff+4]))
		k.Dst = netip.AddrFrom4([4]byte(p[ipv4DstOff : ipv4DstOff+4]))
		k.Proto = h.proto()
		if h.flagsFrag()&ipv4FragMask != 0 {
			return DropNone // a later fragment: no ports to see
		}
		l4 = p[hl:n]
	case 6:
		if len(p) < ipv6Len {
			return DropHdrError
		}
		n := ipv6Len + ipv6(p).payloadLen()
		if n > len(p) {
			return DropHdrError
		}
		k.Src = netip.AddrFrom16([16]byte(p[ipv6SrcOff : ipv6SrcOff+16]))
		k.Dst = netip.AddrFrom16([16]byte(p[ipv6DstOff : ipv6DstOff+16]))
		nh, off := p[ipv6NextOff], ipv6Len
		for {
			switch nh {
			case protoHopByHop, protoRouting, protoDstOpts:
				if n-off < 8 {
					return DropHdrError
				}
				nh, off = p[off], off+8+8*int(p[off+1])
				continue
			case protoFragment:
				if n-off < 8 {
					return DropHdrError
				}
				later := binary.BigEndian.Uint16(p[off+2:])&0xfff8 != 0
				nh, off = p[off], off+8
				if later {
					k.Proto = nh
					return DropNone
				}
				continue
			}
			break
		}
		if off > n {
			return DropHdrError
		}
		k.Proto = nh
		l4 = p[off:n]
	default:
		return DropNotIP
	}
	switch k.Proto {
	case protoTCP, protoUDP, protoSCTP:
		if len(l4) >= 4 {
			k.SrcPort = binary.BigEndian.Uint16(l4)
			k.DstPort = binary.BigEndian.Uint16(l4[2:])
		}
	case protoICMP, protoICMPv6:
		if len(l4) >= 2 {
			k.SrcPort, k.DstPort = uint16(l4[0]), uint16(l4[1])
		}
	}
	return DropNone
}

// ttlOK reports whether the IP packet p may be forwarded: its TTL or hop
// limit is above 1.
func ttlOK(p []byte) bool {
	if p[0]>>4 == 4 {
		return p[ipv4TTLOff] > 1
	}
	return p[ipv6HopOff] > 1
}

// decTTL decrements the TTL or hop limit of the IP packet p before it is
// forwarded. It reports false when the packet may go no further.
func decTTL(p []byte) bool {
	if p[0]>>4 == 4 {
		if p[ipv4TTLOff] <= 1 {
			return false
		}
		p[ipv4TTLOff]--
		// RFC 1624: the TTL is the high byte of its 16-bit word, so the
		// word drops by 0x0100 and the checksum rises by as much.
		c := uint32(binary.BigEndian.Uint16(p[ipv4CsumOff:])) + 0x0100
		binary.BigEndian.PutUint16(p[ipv4CsumOff:], uint16(c+c>>16))
		return true
	}
	if p[ipv6HopOff] <= 1 {
		return false
	}
	p[ipv6HopOff]--
	return true
}

// dstAddr is the destination address of the IP packet p, whose header
// flowKey or the decapsulation has checked.
func dstAddr(p []byte) netip.Addr {
	if p[0]>>4 == 4 {
		return netip.AddrFrom4([4]byte(p[ipv4DstOff : ipv4DstOff+4]))
	}
	return netip.AddrFrom16([16]byte(p[ipv6DstOff : ipv6DstOff+16]))
}
