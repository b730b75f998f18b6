package fib

import (
	"cmp"
	"net/netip"
	"slices"
)

// Contents is a complete state of a Table. [Mirror] builds it from the
// kernel; tests and data-plane setups without a kernel (fake links) give
// it to [Table.Replace].
type Contents struct {
	Links []Link
	// Addrs holds each interface's own addresses, by interface index.
	Addrs     map[int][]netip.Prefix
	Routes    []Route
	Neighbors []Neighbor
}

// Replace publishes c as the table's whole state. It is the static
// counterpart of [Mirror], which must not run on the same table at the
// same time: each would overwrite the other's state. c is not retained.
// Routes and neighbours without a valid address or an interface index are
// left out.
func (t *Table) Replace(c Contents) {
	neigh := make(map[neighKey]*neighEntry, len(c.Neighbors))
	for _, n := range c.Neighbors {
		if n.Ifindex <= 0 || !n.Addr.IsValid() {
			continue
		}
		st := n.State
		if st == 0 {
			st = NeighPermanent
		}
		neigh[neighKeyOf(n.Ifindex, n.Addr)] = &neighEntry{addr: n.Addr.Unmap(), mac: n.MAC, state: st}
	}
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	t.publish(&snapshot{fwd: buildFwd(c.Links, c.Addrs, c.Routes), neigh: buildNeighTable(neigh)})
}

// buildFwd compiles routes, links and addresses into lookup form. Of the
// routes to one prefix, those with the lowest metric win; several winners
// are one ECMP route, and a winner that rejects makes the prefix reject.
// Routes whose Dst is not a valid prefix or whose next hop has no
// interface are left out. It costs O(n log n) for n routes, plus the
// LPM's build.
func buildFwd(links []Link, addrs map[int][]netip.Prefix, routes []Route) *fwd {
	f := &fwd{
		links: make(map[int]Link, len(links)),
		addrs: make(map[int][]netip.Prefix, len(addrs)),
		list:  make([]Route, 0, len(routes)),
	}
	for _, l := range links {
		f.links[l.Index] = l
	}
	for i, a := range addrs {
		f.addrs[i] = slices.Clone(a)
	}
	for _, r := range routes {
		if !r.Dst.IsValid() || (r.Ifindex <= 0 && !r.Reject) {
			continue
		}
		r.Dst = r.Dst.Masked()
		f.list = append(f.list, r)
	}
	// Sorted, the routes to one prefix are a run, best metric first, and
	// the next hops of an ECMP route are in a fixed order: the order that
	// decides which next hop a destination hashes to must not depend on
	// the order in which the kernel listed them.
	slices.SortFunc(f.list, compareRoutes)

	// One slab each for the next hops and their weights: a route's
	// slices are windows into them, rather than an allocation each.
	hops := make([]hop, 0, len(f.list))
	cums := make([]uint32, 0, len(f.list))
	f.routes = make([]fwdRoute, 0, len(f.list))
	v4 := make([]lpmEntry, 0, len(f.list))
	var v6 []lpmEntry
	for rest := f.list; len(rest) > 0; {
		dst := rest[0].Dst
		n := 1
		for n < len(rest) && rest[n].Dst == dst {
			n++
		}
		run := rest[:n]
		rest = rest[n:]
		var fr fwdRoute
		h0 := len(hops)
		for _, r := range run {
			if r.Metric != run[0].Metric {
				break
			}
			if r.Reject {
				fr.reject = true
				hops = hops[:h0]
				cums = cums[:h0]
				break
			}
			hops = append(hops, f.hop(dst, r))
			fr.total += uint32(max(r.Weight, 1))
			cums = append(cums, fr.total)
		}
		if !fr.reject {
			fr.hops = hops[h0:len(hops):len(hops)]
			fr.cum = cums[h0:len(cums):len(cums)]
		}
		e := lpmEntry{key: keyOf(dst.Addr()), plen: uint8(dst.Bits()), val: int32(len(f.routes))}
		f.routes = append(f.routes, fr)
		if dst.Addr().Is4() {
			v4 = append(v4, e)
		} else {
			v6 = append(v6, e)
		}
	}
	f.v4 = buildLPM(v4)
	f.v6 = buildLPM(v6)
	return f
}

// hop precomputes what a lookup hands out for one next hop of a route.
func (f *fwd) hop(dst netip.Prefix, r Route) hop {
	h := hop{ifindex: r.Ifindex, gw: r.Gateway.Unmap(), src: r.Src}
	if h.gw.IsValid() {
		h.gwKey, h.gwID = keyOf(h.gw), neighID(r.Ifindex, h.gw.Is4())
	}
	l, ok := f.links[r.Ifindex]
	if ok {
		h.srcMAC = l.MAC
		h.mtu = l.MTU
	}
	if r.MTU > 0 && (h.mtu == 0 || r.MTU < h.mtu) {
		h.mtu = r.MTU
	}
	if !h.src.IsValid() {
		h.src = pickSrc(f.addrs[r.Ifindex], dst.Addr().Is4())
	}
	return h
}

// pickSrc chooses a source address of one family among an interface's
// addresses: the first one, preferring for IPv6 one that is not
// link-local. This approximates the kernel's source address selection
// (RFC 6724) closely enough for ICMP errors, which is what it is for.
func pickSrc(addrs []netip.Prefix, v4 bool) netip.Addr {
	var ll netip.Addr
	for _, p := range addrs {
		a := p.Addr()
		if a.Is4() != v4 {
			continue
		}
		if !v4 && a.IsLinkLocalUnicast() {
			if !ll.IsValid() {
				ll = a
			}
			continue
		}
		return a
	}
	return ll
}

// compareRoutes orders routes by prefix, then metric, then next hop, and
// puts a rejecting route first among equals, so that it wins as in
// buildFwd.
func compareRoutes(a, b Route) int {
	return cmp.Or(
		a.Dst.Addr().Compare(b.Dst.Addr()),
		cmp.Compare(a.Dst.Bits(), b.Dst.Bits()),
		cmp.Compare(a.Metric, b.Metric),
		-cmp.Compare(boolInt(a.Reject), boolInt(b.Reject)),
		cmp.Compare(a.Ifindex, b.Ifindex),
		a.Gateway.Compare(b.Gateway),
	)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
