package spd

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Dir is the direction a policy applies to.
type Dir uint8

// Directions, as XFRM has them. Fwd policies check packets that are
// forwarded after decryption; like inbound ones, their local side is the
// destination.
const (
	DirOut Dir = iota
	DirIn
	DirFwd
	numDirs
)

func (d Dir) String() string {
	switch d {
	case DirOut:
		return "out"
	case DirIn:
		return "in"
	case DirFwd:
		return "fwd"
	}
	return "dir(" + strconv.Itoa(int(d)) + ")"
}

// Action is what happens to a packet that matches a policy.
type Action uint8

// Actions. The zero Action is invalid, so that a policy whose action was
// forgotten is refused rather than taken for one of these.
const (
	// Protect: the packet goes through the SA (or an SA made from the
	// template) that the policy's SA field names.
	Protect Action = iota + 1
	// Bypass: the packet passes in the clear.
	Bypass
	// Discard: the packet is dropped.
	Discard
)

func (a Action) String() string {
	switch a {
	case Protect:
		return "protect"
	case Bypass:
		return "bypass"
	case Discard:
		return "discard"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// IP protocol numbers the selectors know about.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// PortRange is an inclusive range of ports, or for ICMP and ICMPv6 of
// message types (local side) or codes (remote side). The zero value
// matches any; [Port] and [Ports] make the others. It is not a pair of
// plain numbers with zero meaning any because ICMP type 0 (echo reply) and
// code 0 (most messages) are everyday values that must be writable.
type PortRange struct {
	lo, hi uint16
	set    bool
}

// Port is the range of the single port, type or code p.
func Port(p uint16) PortRange { return PortRange{p, p, true} }

// Ports is the range lo to hi inclusive; Insert refuses it if lo > hi.
func Ports(lo, hi uint16) PortRange { return PortRange{lo, hi, true} }

// Any reports whether r matches every port: the zero value, or 0-65535.
func (r PortRange) Any() bool { return !r.set || r.lo == 0 && r.hi == 0xffff }

// Lo is the lowest port in r.
func (r PortRange) Lo() uint16 { return r.lo }

// Hi is the highest port in r.
func (r PortRange) Hi() uint16 {
	if !r.set {
		return 0xffff
	}
	return r.hi
}

func (r PortRange) String() string {
	switch {
	case r.Any():
		return "any"
	case r.lo == r.hi:
		return strconv.Itoa(int(r.lo))
	}
	return strconv.Itoa(int(r.lo)) + "-" + strconv.Itoa(int(r.hi))
}

// Selector says which packets a policy applies to: RFC 4301's traffic
// selector, written from this gateway's side. For an outbound policy the
// local prefix and ports are the packet's source; for an inbound or
// forward policy they are its destination.
type Selector struct {
	// Local and Remote must be valid prefixes of the same family;
	// 0.0.0.0/0 and ::/0 match any address. Host bits past the prefix
	// length are ignored (the prefix is stored masked), as the kernel
	// does.
	Local, Remote netip.Prefix
	// Proto is the IP protocol (IPv6: the upper-layer next header); 0
	// matches any.
	Proto uint8
	// LocalPorts and RemotePorts need Proto TCP, UDP or SCTP. For ICMP
	// and ICMPv6, LocalPorts is the message type and RemotePorts the
	// code, whatever the direction: XFRM carries the type in the
	// selector's source-port field and the code in its destination-port
	// field, and so does [Key].
	LocalPorts, RemotePorts PortRange
}

// Policy is an SPD entry as the control plane installs it.
type Policy struct {
	Dir
	Selector
	// Priority orders overlapping policies: the lowest value wins, as in
	// XFRM. Between equal priorities the policy inserted first wins, so a
	// replacement inserted before its predecessor is deleted takes over
	// only when the predecessor goes.
	Priority uint32
	Action   Action
	// Trap marks a Protect policy whose SA is negotiated on demand: a
	// packet that matches it while no SA is installed raises an acquire.
	Trap bool
	// SA is the control plane's opaque reference to the SA, or the SA
	// template, that a Protect policy uses.
	SA uint64
}

func (p Policy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v local %v remote %v", p.Dir, p.Local, p.Remote)
	if p.Proto != 0 {
		fmt.Fprintf(&b, " proto %d", p.Proto)
	}
	writeRange(&b, "lport", p.LocalPorts)
	writeRange(&b, "rport", p.RemotePorts)
	fmt.Fprintf(&b, " prio %d %v", p.Priority, p.Action)
	if p.Action == Protect {
		fmt.Fprintf(&b, " sa %#x", p.SA)
	}
	if p.Trap {
		b.WriteString(" trap")
	}
	return b.String()
}

func writeRange(b *strings.Builder, name string, r PortRange) {
	if !r.Any() {
		fmt.Fprintf(b, " %s %v", name, r)
	}
}

// compile checks p and turns it into the compact form that lookups match
// against. The ID is left for the caller to assign.
func compile(p *Policy) (entryData, error) {
	var d entryData
	if p.Dir >= numDirs {
		return d, ErrDir
	}
	if p.Action < Protect || p.Action > Discard {
		return d, ErrAction
	}
	if p.Trap && p.Action != Protect {
		return d, ErrTrap
	}
	if !p.Local.IsValid() || !p.Remote.IsValid() {
		return d, ErrPrefix
	}
	if p.Local.Addr().Is4() != p.Remote.Addr().Is4() {
		return d, ErrFamily
	}
	var err error
	if d.lpLo, d.lpSpan, err = portSpan(p.Proto, p.LocalPorts); err != nil {
		return d, fmt.Errorf("local ports: %w", err)
	}
	if d.rpLo, d.rpSpan, err = portSpan(p.Proto, p.RemotePorts); err != nil {
		return d, fmt.Errorf("remote ports: %w", err)
	}
	fam := fam6
	if p.Local.Addr().Is4() {
		fam = fam4
	}
	d.l = addrWords(p.Local.Masked().Addr())
	d.r = addrWords(p.Remote.Masked().Addr())
	d.lbits = uint8(p.Local.Bits())
	d.rbits = uint8(p.Remote.Bits())
	d.flags = tagOf(p.Dir, fam) | uint8(p.Action)<<flagActionShift
	if p.Trap {
		d.flags |= flagTrap
	}
	d.proto = p.Proto
	d.prio = p.Priority
	d.sa = p.SA
	return d, nil
}

// portSpan turns r into the low end and width that matching uses; any port
// becomes 0 and 0xffff so that the match needs no special case.
func portSpan(proto uint8, r PortRange) (lo, span uint16, err error) {
	if r.Any() {
		return 0, 0xffff, nil
	}
	switch proto {
	case protoTCP, protoUDP, protoSCTP:
	case protoICMP, protoICMPv6:
		if r.hi > 0xff {
			return 0, 0, fmt.Errorf("ICMP type or code %v above 255: %w", r, ErrPorts)
		}
	default:
		return 0, 0, fmt.Errorf("%v with protocol %d: %w", r, proto, ErrPorts)
	}
	if r.lo > r.hi {
		return 0, 0, fmt.Errorf("%d-%d: %w", r.lo, r.hi, ErrPorts)
	}
	return r.lo, r.hi - r.lo, nil
}

// addrWords is a as a 128-bit big-endian number in two words. An IPv4
// address takes the top 32 bits, so that a prefix length means the same
// high-order bits in both families.
func addrWords(a netip.Addr) [2]uint64 {
	if a.Is4() {
		b := a.As4()
		return [2]uint64{uint64(binary.BigEndian.Uint32(b[:])) << 32, 0}
	}
	b := a.As16()
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// prefixOf is the inverse of addrWords and the prefix length.
func prefixOf(fam uint8, w [2]uint64, bits uint8) netip.Prefix {
	if fam == fam4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(w[0]>>32))
		return netip.PrefixFrom(netip.AddrFrom4(b), int(bits))
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], w[0])
	binary.BigEndian.PutUint64(b[8:], w[1])
	return netip.PrefixFrom(netip.AddrFrom16(b), int(bits))
}
