package fib

import (
	"cmp"
	"maps"
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
func (t *Table) Replace(c Contents) {
	neigh := make(map[neighKey]*neighEntry, len(c.Neighbors))
	for _, n := range c.Neighbors {
		st := n.State
		if st == 0 {
			st = NeighPermanent
		}
		neigh[neighKeyOf(n.Ifindex, n.Addr)] = &neighEntry{addr: n.Addr.Unmap(), mac: n.MAC, state: st}
	}
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	t.publish(&snapshot{fwd: buildFwd(c.Links, c.Addrs, c.Routes), neigh: neigh})
}

// buildFwd compiles routes, links and addresses into lookup form. Of the
// routes to one prefix, those with the lowest metric win; several winners
// are one ECMP route, and a winner that rejects makes the prefix reject.
// Routes whose Dst is not a valid prefix or whose next hop has no
// interface are left out.
func buildFwd(links []Link, addrs map[int][]netip.Prefix, routes []Route) *fwd {
	f := &fwd{
		links: make(map[int]Link, len(links)),
		addrs: make(map[int][]netip.Prefix, len(addrs)),
	}
	for _, l := range links {
		f.links[l.Index] = l
	}
	for i, a := range addrs {
		f.addrs[i] = slices.Clone(a)
	}

	byDst := make(map[netip.Prefix][]Route)
	for _, r := range routes {
		if !r.Dst.IsValid() || (r.Ifindex <= 0 && !r.Reject) {
			continue
		}
		r.Dst = r.Dst.Masked()
		f.list = append(f.list, r)
		byDst[r.Dst] = append(byDst[r.Dst], r)
	}
	slices.SortFunc(f.list, compareRoutes)

	dsts := slices.SortedFunc(maps.Keys(byDst), func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	var v4, v6 []lpmEntry
	for _, dst := range dsts {
		rs := byDst[dst]
		best := rs[0].Metric
		for _, r := range rs {
			best = min(best, r.Metric)
		}
		var fr fwdRoute
		for _, r := range rs {
			if r.Metric != best {
				continue
			}
			if r.Reject {
				fr = fwdRoute{reject: true}
				break
			}
			fr.hops = append(fr.hops, f.hop(dst, r))
			w := uint32(max(r.Weight, 1))
			fr.total += w
			fr.cum = append(fr.cum, fr.total)
		}
		if !fr.reject && len(fr.hops) > 1 {
			// The order of next hops decides which one a destination
			// hashes to: sort them so that it does not depend on the
			// order in which the kernel listed them.
			order := make([]int, len(fr.hops))
			for i := range order {
				order[i] = i
			}
			slices.SortFunc(order, func(a, b int) int {
				return cmp.Or(cmp.Compare(fr.hops[a].ifindex, fr.hops[b].ifindex), fr.hops[a].gw.Compare(fr.hops[b].gw))
			})
			hops, cum := make([]hop, len(order)), make([]uint32, len(order))
			var total uint32
			for i, j := range order {
				hops[i] = fr.hops[j]
				w := fr.cum[j]
				if j > 0 {
					w -= fr.cum[j-1]
				}
				total += w
				cum[i] = total
			}
			fr.hops, fr.cum = hops, cum
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

func compareRoutes(a, b Route) int {
	return cmp.Or(
		a.Dst.Addr().Compare(b.Dst.Addr()),
		cmp.Compare(a.Dst.Bits(), b.Dst.Bits()),
		cmp.Compare(a.Metric, b.Metric),
		cmp.Compare(a.Ifindex, b.Ifindex),
		a.Gateway.Compare(b.Gateway),
	)
}
