package control

import "net/netip"

// Traffic selector narrowing, RFC 7296 section 2.9: the responder answers
// with the part of what the initiator proposed that its own policy allows.

// AnyPorts is the full port range.
const maxPort = 65535

// SelectorFromPrefix is the traffic selector of a whole prefix, any
// protocol and port.
func SelectorFromPrefix(p netip.Prefix) TrafficSelector {
	p = p.Masked()
	return TrafficSelector{Start: p.Addr(), End: lastAddr(p), EndPort: maxPort}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// intersect is the selector both a and b allow, if any.
func intersect(a, b TrafficSelector) (TrafficSelector, bool) {
	if a.Start.Is4() != b.Start.Is4() {
		return TrafficSelector{}, false
	}
	r := TrafficSelector{IPProto: a.IPProto}
	switch {
	case a.IPProto == 0:
		r.IPProto = b.IPProto
	case b.IPProto != 0 && b.IPProto != a.IPProto:
		return TrafficSelector{}, false
	}
	r.Start = maxAddr(a.Start, b.Start)
	r.End = minAddr(a.End, b.End)
	r.StartPort = max(a.StartPort, b.StartPort)
	r.EndPort = min(a.EndPort, b.EndPort)
	if r.Start.Compare(r.End) > 0 || r.StartPort > r.EndPort {
		return TrafficSelector{}, false
	}
	return r, true
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) >= 0 {
		return a
	}
	return b
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) <= 0 {
		return a
	}
	return b
}

// narrow returns every non-empty intersection of a proposed selector with an
// allowed one, in the order proposed.
func narrow(proposed, allowed []TrafficSelector) []TrafficSelector {
	var out []TrafficSelector
	for _, p := range proposed {
		for _, a := range allowed {
			if r, ok := intersect(p, a); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// within says every selector of got lies inside some selector of allowed:
// what an initiator checks of the responder's narrowed answer.
func within(got, allowed []TrafficSelector) bool {
	for _, g := range got {
		ok := false
		for _, a := range allowed {
			if r, in := intersect(g, a); in && r == g {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return len(got) > 0
}

// Within reports whether every selector of got lies inside one of
// allowed: which configured connection a negotiated child SA belongs to.
func Within(got, allowed []TrafficSelector) bool { return within(got, allowed) }
