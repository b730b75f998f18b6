package spd

import (
	"encoding/binary"
	"net/netip"
)

// Key is what a lookup knows of a packet, in the packet's own terms: the
// data plane fills it from the headers without knowing which side is local.
type Key struct {
	// Src and Dst are the packet's addresses, as they appear in it: an
	// IPv4-mapped IPv6 address is IPv6 and matches only IPv6 prefixes.
	Src, Dst netip.Addr
	Proto    uint8
	// SrcPort and DstPort are the TCP, UDP or SCTP ports; for ICMP and
	// ICMPv6 they carry the type and the code, as in XFRM's flow key.
	SrcPort, DstPort uint16
}

// query is a Key seen from the gateway's side for one direction, in the
// form entries store.
type query struct {
	l, r   [2]uint64
	lp, rp uint16
	proto  uint8
	tag    uint8
	fam    uint8
}

// set fills q from k for direction dir. It reports false for a key that no
// policy can match: an unknown direction, a missing address, or addresses
// of two families.
func (q *query) set(dir Dir, k *Key) bool {
	if dir >= numDirs {
		return false
	}
	local, remote := &k.Src, &k.Dst
	q.lp, q.rp = k.SrcPort, k.DstPort
	if dir != DirOut {
		local, remote = remote, local
		if k.Proto != protoICMP && k.Proto != protoICMPv6 {
			q.lp, q.rp = q.rp, q.lp
		}
	}
	switch {
	case local.Is4():
		if !remote.Is4() {
			return false
		}
		a, b := local.As4(), remote.As4()
		q.l = [2]uint64{uint64(binary.BigEndian.Uint32(a[:])) << 32, 0}
		q.r = [2]uint64{uint64(binary.BigEndian.Uint32(b[:])) << 32, 0}
		q.fam = fam4
	case local.Is6():
		if !remote.Is6() {
			return false
		}
		a, b := local.As16(), remote.As16()
		q.l = [2]uint64{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
		q.r = [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
		q.fam = fam6
	default:
		return false
	}
	q.proto = k.Proto
	q.tag = tagOf(dir, q.fam)
	return true
}
