package dataplane

import (
	"encoding/binary"
	"net/netip"
)

// ICMP errors the workers send, as a router does (RFC 792, RFC 1191,
// RFC 4443).
const (
	icmpDestUnreach   = 3
	icmpFragNeeded    = 4
	icmpTimeExceeded  = 11
	icmp6PacketTooBig = 2
	icmp6TimeExceeded = 3

	// An ICMPv4 error carries as much of the offending packet as fits in
	// 576 bytes (RFC 1812 section 4.3.2.3), an ICMPv6 one in 1280
	// (RFC 4443 section 2.4 (c)).
	icmpMaxLen  = 576
	icmp6MaxLen = 1280
	icmpHdrLen  = 8
)

// icmpErrorOK reports whether RFC 1812 section 4.3.2.7 and RFC 4443
// section 2.4 (e) allow an ICMP error about the IP packet p: not about an
// ICMP error, not about a later fragment, not to a multicast, broadcast,
// unspecified or loopback source.
func icmpErrorOK(p []byte) bool {
	if p[0]>>4 == 4 {
		h := ipv4(p)
		src := netip.AddrFrom4([4]byte(p[ipv4SrcOff : ipv4SrcOff+4]))
		if h.flagsFrag()&ipv4FragMask != 0 || !unicast(src) || src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return false
		}
		if h.proto() == protoICMP {
			hl := h.headerLen()
			// Errors are types 3, 4, 5, 11, 12; queries may be answered.
			if len(p) <= hl {
				return false
			}
			switch p[hl] {
			case 3, 4, 5, 11, 12:
				return false
			}
		}
		return true
	}
	src := netip.AddrFrom16([16]byte(p[ipv6SrcOff : ipv6SrcOff+16]))
	if !unicast(src) {
		return false
	}
	if p[ipv6NextOff] == protoICMPv6 && len(p) > ipv6Len && p[ipv6Len] < 128 {
		return false // an ICMPv6 error (types 0-127)
	}
	return true
}

func unicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback()
}

// icmpError turns the IP packet in f into an ICMP error about it from
// src, in place: the new IP and ICMP headers go into the headroom in
// front of the packet, which is cut to the length the RFCs allow. For
// "fragmentation needed" and "packet too big", mtu is the MTU to report.
// It reports false if src is not of the packet's family or there is no
// room.
func icmpError(f *Frame, src netip.Addr, typ, code uint8, mtu int) bool {
	p := f.Data()
	v6 := p[0]>>4 == 6
	if v6 != src.Is6() || !src.IsValid() {
		return false
	}
	hdr, maxLen := ipv4MinLen+icmpHdrLen, icmpMaxLen
	if v6 {
		hdr, maxLen = ipv6Len+icmpHdrLen, icmp6MaxLen
	}
	if f.Off < hdr {
		return false
	}
	quote := min(len(p), maxLen-hdr)
	f.Off -= hdr
	f.Len = hdr + quote
	out := f.Data()
	icmp := out[hdr-icmpHdrLen:]
	icmp[0], icmp[1] = typ, code
	clear(icmp[2:icmpHdrLen])
	if v6 {
		// The original source becomes the destination.
		copy(out[ipv6DstOff:ipv6DstOff+16], p[ipv6SrcOff:ipv6SrcOff+16])
		binary.BigEndian.PutUint32(out, 6<<28)
		binary.BigEndian.PutUint16(out[ipv6PayLenOff:], uint16(icmpHdrLen+quote))
		out[ipv6NextOff] = protoICMPv6
		out[ipv6HopOff] = 64
		s := src.As16()
		copy(out[ipv6SrcOff:], s[:])
		if typ == icmp6PacketTooBig {
			binary.BigEndian.PutUint32(icmp[4:], uint32(mtu))
		}
		// The checksum covers the pseudo-header: addresses, length, next
		// header (RFC 8200 section 8.1).
		acc := sum(out[ipv6SrcOff:ipv6DstOff+16], 0)
		acc += uint64(icmpHdrLen+quote) + protoICMPv6
		binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(icmp[:icmpHdrLen+quote], acc)))
		return true
	}
	h := ipv4(out)
	dst := [4]byte(p[ipv4SrcOff : ipv4SrcOff+4])
	clear(out[:ipv4MinLen])
	out[0] = 4<<4 | ipv4MinLen/4
	h.setTotalLen(ipv4MinLen + icmpHdrLen + quote)
	out[ipv4TTLOff] = 64
	out[ipv4ProtoOff] = protoICMP
	s := src.As4()
	copy(out[ipv4SrcOff:], s[:])
	copy(out[ipv4DstOff:], dst[:])
	h.setChecksum()
	if typ == icmpDestUnreach && code == icmpFragNeeded {
		binary.BigEndian.PutUint16(icmp[6:], uint16(mtu))
	}
	binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(icmp[:icmpHdrLen+quote], 0)))
	return true
}
