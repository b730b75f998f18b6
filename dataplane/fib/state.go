package fib

import (
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// state is the mirror's own, mutable copy of the kernel's state, owned by
// the mirror goroutine. It is rebuilt from dumps and changed by
// notifications; publish compiles what changed into a new snapshot.
//
// Notifications that were queued while a dump ran are applied after it,
// so each change must be one that converges when replayed over a state
// that already contains it: links, addresses and neighbours are set to
// their full new value or deleted, and routes are matched by content.
type state struct {
	tableID int

	links map[int]Link
	addrs map[int][]netip.Prefix
	// v4 holds, per (prefix, metric), the kernel's aliases in its order:
	// IPv4 keeps several routes to one key (`ip route append` and
	// `prepend`) and uses the first. Each alias is its next hops.
	v4 map[rkey][][]Route
	// v6 holds, per (prefix, metric), the union of next hops: IPv6 turns
	// routes to one key into ECMP siblings, notifies additions with the
	// whole sibling set and deletions of single siblings one by one.
	v6    map[rkey][]Route
	neigh map[neighKey]*neighEntry

	fwdDirty, neighDirty bool
	// redumpRoutes and redumpNeigh ask for fresh dumps: the kernel
	// flushes IPv4 routes and neighbours without notifications when a
	// link goes down or away or loses an address.
	redumpRoutes, redumpNeigh bool
}

type rkey struct {
	dst    netip.Prefix
	metric int
}

func newState(tableID int) *state {
	return &state{
		tableID: tableID,
		links:   map[int]Link{},
		addrs:   map[int][]netip.Prefix{},
		v4:      map[rkey][][]Route{},
		v6:      map[rkey][]Route{},
		neigh:   map[neighKey]*neighEntry{},
	}
}

// publish compiles the state into a snapshot, sharing the parts that did
// not change with the current one.
func (s *state) publish(t *Table) {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	cur := t.snap.Load()
	next := &snapshot{fwd: cur.fwd, neigh: cur.neigh}
	if s.fwdDirty {
		next.fwd = buildFwd(slices.Collect(maps.Values(s.links)), s.addrs, s.routes())
	}
	if s.neighDirty {
		next.neigh = buildNeighTable(s.neigh)
	}
	s.fwdDirty, s.neighDirty = false, false
	t.publish(next)
}

// routes flattens the route state: the first alias of each IPv4 key, every
// sibling of each IPv6 key.
func (s *state) routes() []Route {
	var out []Route
	for _, as := range s.v4 {
		if len(as) > 0 {
			out = append(out, as[0]...)
		}
	}
	for _, hs := range s.v6 {
		out = append(out, hs...)
	}
	return out
}

func (s *state) setLinks(ls []netlink.Link) {
	clear(s.links)
	for _, l := range ls {
		s.links[l.Attrs().Index] = linkOf(l)
	}
	s.fwdDirty = true
}

func (s *state) linkUpdate(u netlink.LinkUpdate) {
	idx := u.Link.Attrs().Index
	old, had := s.links[idx]
	if u.Header.Type == unix.RTM_DELLINK {
		if !had {
			return
		}
		delete(s.links, idx)
		delete(s.addrs, idx)
		for k := range s.neigh {
			if int(k.ifindex) == idx {
				delete(s.neigh, k)
				s.neighDirty = true
			}
		}
		s.fwdDirty, s.redumpRoutes = true, true
		return
	}
	l := linkOf(u.Link)
	if had && old == l {
		return // statistics or attributes the table does not keep
	}
	s.links[idx] = l
	s.fwdDirty = true
	if had && old.Up && !l.Up {
		s.redumpRoutes, s.redumpNeigh = true, true
	}
}

func linkOf(l netlink.Link) Link {
	a := l.Attrs()
	out := Link{
		Index: a.Index,
		Name:  a.Name,
		MTU:   a.MTU,
		Up:    a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_RUNNING != 0,
	}
	if len(a.HardwareAddr) == len(out.MAC) {
		copy(out.MAC[:], a.HardwareAddr)
	}
	return out
}

func (s *state) setAddrs(as []netlink.Addr) {
	clear(s.addrs)
	for _, a := range as {
		if p, ok := prefixOf(a.IPNet, false); ok {
			s.addrs[a.LinkIndex] = append(s.addrs[a.LinkIndex], p)
		}
	}
	s.fwdDirty = true
}

func (s *state) addrUpdate(u netlink.AddrUpdate) {
	p, ok := prefixOf(&u.LinkAddress, false)
	if !ok {
		return
	}
	as := s.addrs[u.LinkIndex]
	i := slices.Index(as, p)
	switch {
	case u.NewAddr && i < 0:
		s.addrs[u.LinkIndex] = append(slices.Clip(as), p)
	case !u.NewAddr && i >= 0:
		s.addrs[u.LinkIndex] = slices.Delete(slices.Clone(as), i, i+1)
		s.redumpRoutes = true
	default:
		return
	}
	s.fwdDirty = true
}

// prefixOf converts a net.IPNet, masked or as an interface address.
func prefixOf(n *net.IPNet, masked bool) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 || ones > a.BitLen() {
		return netip.Prefix{}, false
	}
	if bits == 128 && a.Is4() {
		ones -= 96
	}
	p := netip.PrefixFrom(a, ones)
	if masked {
		p = p.Masked()
	}
	return p, p.IsValid()
}

func (s *state) setRoutes(rs []netlink.Route) {
	clear(s.v4)
	clear(s.v6)
	for _, r := range rs {
		k, hops, ok := s.convertRoute(&r)
		if !ok {
			continue
		}
		if k.dst.Addr().Is4() {
			s.v4[k] = append(s.v4[k], hops)
		} else {
			s.v6[k] = mergeHops(s.v6[k], hops)
		}
	}
	s.fwdDirty = true
}

// routeUpdate applies one route notification. For IPv4 the kernel says
// with the message's flags where the route went: NLM_F_EXCL for the first
// route of its key, NLM_F_REPLACE for one that replaced the first alias,
// NLM_F_APPEND for one added after the others, none for one added before
// them (fib_table_insert).
func (s *state) routeUpdate(u netlink.RouteUpdate) {
	k, hops, ok := s.convertRoute(&u.Route)
	if !ok {
		return
	}
	del := u.Type == unix.RTM_DELROUTE
	if !k.dst.Addr().Is4() {
		hs := s.v6[k]
		switch {
		case del:
			hs = slices.DeleteFunc(slices.Clone(hs), func(h Route) bool {
				return slices.ContainsFunc(hops, func(d Route) bool { return sameHop(h, d) })
			})
		case u.NlFlags&unix.NLM_F_REPLACE != 0:
			hs = hops
		default:
			hs = mergeHops(hs, hops)
		}
		if len(hs) == 0 {
			delete(s.v6, k)
		} else {
			s.v6[k] = hs
		}
		s.fwdDirty = true
		return
	}
	as := slices.Clone(s.v4[k])
	i := slices.IndexFunc(as, func(a []Route) bool { return slices.Equal(a, hops) })
	switch {
	case del:
		if i < 0 {
			return // already gone: a replay over a newer dump
		}
		as = slices.Delete(as, i, i+1)
	case u.NlFlags&unix.NLM_F_REPLACE != 0:
		if len(as) == 0 {
			as = [][]Route{hops}
		} else {
			as[0] = hops
		}
	case u.NlFlags&unix.NLM_F_EXCL != 0:
		as = [][]Route{hops}
	case i >= 0:
		return // already there: a replay over a newer dump
	case u.NlFlags&unix.NLM_F_APPEND != 0:
		as = append(as, hops)
	default:
		as = slices.Insert(as, 0, hops)
	}
	if len(as) == 0 {
		delete(s.v4, k)
	} else {
		s.v4[k] = as
	}
	s.fwdDirty = true
}

// sameHop reports whether two next hops of one route are the same one,
// whatever their other attributes.
func sameHop(a, b Route) bool {
	return a.Ifindex == b.Ifindex && a.Gateway == b.Gateway && a.Reject == b.Reject
}

// mergeHops adds hops to hs, replacing the ones that are the same.
func mergeHops(hs, hops []Route) []Route {
	hs = slices.Clone(hs)
	for _, h := range hops {
		if i := slices.IndexFunc(hs, func(o Route) bool { return sameHop(o, h) }); i >= 0 {
			hs[i] = h
		} else {
			hs = append(hs, h)
		}
	}
	return hs
}

// convertRoute turns a kernel route into its key and next hops, or says
// that the table ignores it: routes of other tables, with a TOS selector,
// cloned (cached) routes, and types other than unicast and the rejecting
// ones (local, broadcast, multicast, anycast, NAT). Next hops the kernel
// marks dead are left out.
func (s *state) convertRoute(r *netlink.Route) (rkey, []Route, bool) {
	if r.Table != s.tableID || r.Tos != 0 || r.Flags&unix.RTM_F_CLONED != 0 {
		return rkey{}, nil, false
	}
	var reject bool
	switch r.Type {
	case unix.RTN_UNICAST:
	case unix.RTN_BLACKHOLE, unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT, unix.RTN_THROW:
		reject = true
	default:
		return rkey{}, nil, false
	}
	var dst netip.Prefix
	switch {
	case r.Dst != nil:
		var ok bool
		if dst, ok = prefixOf(r.Dst, true); !ok {
			return rkey{}, nil, false
		}
	case r.Family == unix.AF_INET:
		dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	case r.Family == unix.AF_INET6:
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	default:
		return rkey{}, nil, false
	}
	k := rkey{dst: dst, metric: r.Priority}
	base := Route{Dst: dst, Metric: r.Priority, MTU: r.MTU}
	if a, ok := netip.AddrFromSlice(r.Src); ok {
		base.Src = a.Unmap()
	}
	if reject {
		base.Reject = true
		base.Ifindex = r.LinkIndex
		return k, []Route{base}, true
	}
	var hops []Route
	if len(r.MultiPath) == 0 {
		if r.LinkIndex <= 0 {
			// A route through a nexthop object, which this version of
			// the library does not decode; with the kernel's default
			// nexthop_compat_mode the kernel expands it into plain
			// attributes, and this does not happen.
			return rkey{}, nil, false
		}
		h := base
		h.Ifindex = r.LinkIndex
		h.Gateway = gatewayOf(r.Gw, r.Via)
		hops = append(hops, h)
	}
	for _, nh := range r.MultiPath {
		if nh.Flags&unix.RTNH_F_DEAD != 0 || nh.LinkIndex <= 0 {
			continue
		}
		h := base
		h.Ifindex = nh.LinkIndex
		h.Gateway = gatewayOf(nh.Gw, nh.Via)
		h.Weight = nh.Hops + 1
		hops = append(hops, h)
	}
	if len(hops) == 0 {
		return rkey{}, nil, false
	}
	return k, hops, true
}

func gatewayOf(gw net.IP, via netlink.Destination) netip.Addr {
	if a, ok := netip.AddrFromSlice(gw); ok {
		return a.Unmap()
	}
	if v, ok := via.(*netlink.Via); ok && v != nil {
		if a, ok := netip.AddrFromSlice(v.Addr); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func (s *state) setNeighbors(ns []netlink.Neigh) {
	old := s.neigh
	s.neigh = make(map[neighKey]*neighEntry, len(ns))
	for _, n := range ns {
		if k, e, ok := neighOf(&n); ok {
			s.neigh[k] = keepUsed(old[k], e)
		}
	}
	s.neighDirty = true
}

func (s *state) neighUpdate(u netlink.NeighUpdate) {
	k, e, ok := neighOf(&u.Neigh)
	if !ok {
		return
	}
	old := s.neigh[k]
	if u.Type == unix.RTM_DELNEIGH {
		if old != nil {
			delete(s.neigh, k)
			s.neighDirty = true
		}
		return
	}
	if old != nil && old.mac == e.mac && old.state == e.state {
		return
	}
	s.neigh[k] = keepUsed(old, e)
	s.neighDirty = true
}

// keepUsed carries a lookup's mark over to the entry that replaces old
// while it stays STALE, so that its refresh is not lost to an update that
// changed nothing the mirror acts on (a new dump, say).
func keepUsed(old, e *neighEntry) *neighEntry {
	if old != nil && old.used.Load() && e.state&nudStale != 0 {
		e.used.Store(true)
	}
	return e
}

// neighOf converts an IPv4 or IPv6 neighbour entry; bridge FDB entries,
// proxy entries and entries without an interface are not neighbours.
func neighOf(n *netlink.Neigh) (neighKey, *neighEntry, bool) {
	if n.LinkIndex <= 0 || n.Flags&netlink.NTF_PROXY != 0 {
		return neighKey{}, nil, false
	}
	if n.Family != 0 && n.Family != unix.AF_INET && n.Family != unix.AF_INET6 {
		return neighKey{}, nil, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return neighKey{}, nil, false
	}
	a = a.Unmap()
	e := &neighEntry{addr: a, state: NeighState(n.State)}
	if len(n.HardwareAddr) == len(e.mac) {
		copy(e.mac[:], n.HardwareAddr)
	} else if e.state&NeighNoARP == 0 {
		// A usable entry without an Ethernet address would hand out
		// a zero MAC; only NOARP entries are meant to have none.
		e.state &^= nudValid
	}
	return neighKeyOf(n.LinkIndex, a), e, true
}
