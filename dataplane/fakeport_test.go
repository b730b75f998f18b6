package dataplane

import (
	"encoding/binary"
	"net/netip"
)

// fakeRoute is one entry of a fakeRouter.
type fakeRoute struct {
	dst netip.Prefix
	nh  NextHop
	// unresolved makes the route's next hop unknown at layer 2.
	unresolved bool
}

// fakeRouter routes by the longest of a few prefixes, and knows one
// address per interface and family.
type fakeRouter struct {
	routes   []fakeRoute
	src      map[int][2]netip.Addr
	resolves int
}

func (r *fakeRouter) Route(dst netip.Addr, nh *NextHop) RouteResult {
	best := -1
	for i := range r.routes {
		if r.routes[i].dst.Contains(dst) && (best < 0 || r.routes[i].dst.Bits() > r.routes[best].dst.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return RouteNone
	}
	*nh = r.routes[best].nh
	if !nh.Addr.IsValid() {
		nh.Addr = dst
	}
	if r.routes[best].unresolved {
		return RouteUnresolved
	}
	return RouteOK
}

func (r *fakeRouter) Resolve(int, netip.Addr) { r.resolves++ }

func (r *fakeRouter) Source(ifindex int, v6 bool) netip.Addr {
	a := r.src[ifindex]
	if v6 {
		return a[1]
	}
	return a[0]
}

// mac is a locally administered MAC address ending in n.
func mac(n byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, n} }

// ether wraps an IP packet in an Ethernet header from src to dst.
func ether(dst, src [6]byte, ip []byte) []byte {
	f := make([]byte, ethLen+len(ip))
	copy(f, dst[:])
	copy(f[6:], src[:])
	et := uint16(ethTypeIPv4)
	if ip[0]>>4 == 6 {
		et = ethTypeIPv6
	}
	binary.BigEndian.PutUint16(f[ethTypeOff:], et)
	copy(f[ethLen:], ip)
	return f
}
