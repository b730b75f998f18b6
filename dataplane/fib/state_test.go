package fib

import (
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nlRoute builds a kernel route of the main table as the library decodes
// one: gws are "ifindex/gateway" next hops, one of them for a plain route,
// several for a multipath one.
func nlRoute(dst string, metric int, gws ...string) netlink.Route {
	p := pfx(dst)
	fam := unix.AF_INET6
	if p.Addr().Is4() {
		fam = unix.AF_INET
	}
	r := netlink.Route{Family: fam, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Priority: metric}
	if p.Bits() > 0 {
		r.Dst = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	}
	hop := func(s string) (int, net.IP) {
		var idx int
		var gw string
		for i := range s {
			if s[i] == '/' {
				gw = s[i+1:]
				break
			}
			idx = idx*10 + int(s[i]-'0')
		}
		if gw == "" {
			return idx, nil
		}
		return idx, net.IP(addr(gw).AsSlice())
	}
	if len(gws) == 1 {
		r.LinkIndex, r.Gw = hop(gws[0])
		return r
	}
	for _, g := range gws {
		i, gw := hop(g)
		r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{LinkIndex: i, Gw: gw})
	}
	return r
}

func upd(typ uint16, flags uint16, r netlink.Route) netlink.RouteUpdate {
	return netlink.RouteUpdate{Type: typ, NlFlags: flags, Route: r}
}

// gateways lists where the state's published route to dst goes.
func gateways(t *testing.T, s *state, dst string) []string {
	t.Helper()
	var out []string
	for _, r := range s.routes() {
		if r.Dst == pfx(dst) {
			out = append(out, r.Gateway.String())
		}
	}
	slices.Sort(out)
	return out
}

// IPv4 keeps the kernel's aliases: prepend, append, replace and delete as
// fib_table_insert and fib_table_delete do, and a replay of notifications
// over a dump that already has them changes nothing.
func TestStateIPv4Aliases(t *testing.T) {
	s := newState(unix.RT_TABLE_MAIN)
	a := nlRoute("198.51.100.0/24", 0, "2/192.0.2.1")
	b := nlRoute("198.51.100.0/24", 0, "2/192.0.2.2")
	c := nlRoute("198.51.100.0/24", 0, "2/192.0.2.3")
	step := func(u netlink.RouteUpdate, want ...string) {
		t.Helper()
		s.routeUpdate(u)
		if got := gateways(t, s, "198.51.100.0/24"); !slices.Equal(got, want) {
			t.Fatalf("after %v %#x %v: routes via %v, want %v", u.Type, u.NlFlags, u.Gw, got, want)
		}
	}
	step(upd(unix.RTM_NEWROUTE, unix.NLM_F_EXCL|unix.NLM_F_CREATE, a), "192.0.2.1")
	step(upd(unix.RTM_NEWROUTE, unix.NLM_F_APPEND|unix.NLM_F_CREATE, b), "192.0.2.1") // b waits behind a
	step(upd(unix.RTM_NEWROUTE, unix.NLM_F_CREATE, c), "192.0.2.3")                   // prepended
	step(upd(unix.RTM_NEWROUTE, unix.NLM_F_CREATE, c), "192.0.2.3")                   // replayed: no duplicate
	step(upd(unix.RTM_DELROUTE, 0, c), "192.0.2.1")
	step(upd(unix.RTM_DELROUTE, 0, a), "192.0.2.2")
	step(upd(unix.RTM_DELROUTE, 0, a), "192.0.2.2") // replayed
	step(upd(unix.RTM_NEWROUTE, unix.NLM_F_REPLACE, c), "192.0.2.3")
	step(upd(unix.RTM_DELROUTE, 0, c))
	if len(s.v4) != 0 {
		t.Errorf("state keeps %v", s.v4)
	}
}

// IPv6 keeps one set of siblings per key: additions carry the whole set,
// deletions one sibling at a time.
func TestStateIPv6Siblings(t *testing.T) {
	s := newState(unix.RT_TABLE_MAIN)
	dst := "2001:db8:5::/48"
	step := func(u netlink.RouteUpdate, want ...string) {
		t.Helper()
		s.routeUpdate(u)
		if got := gateways(t, s, dst); !slices.Equal(got, want) {
			t.Fatalf("routes via %v, want %v", got, want)
		}
	}
	step(upd(unix.RTM_NEWROUTE, unix.NLM_F_EXCL|unix.NLM_F_CREATE, nlRoute(dst, 1024, "2/fe80::1")), "fe80::1")
	step(upd(unix.RTM_NEWROUTE, unix.NLM_F_APPEND|unix.NLM_F_CREATE, nlRoute(dst, 1024, "2/fe80::1", "3/fe80::2")), "fe80::1", "fe80::2")
	step(upd(unix.RTM_DELROUTE, 0, nlRoute(dst, 1024, "2/fe80::1")), "fe80::2")
	step(upd(unix.RTM_NEWROUTE, unix.NLM_F_REPLACE, nlRoute(dst, 1024, "2/fe80::3")), "fe80::3")
	step(upd(unix.RTM_DELROUTE, 0, nlRoute(dst, 1024, "2/fe80::3")))
}

// Routes the table does not mirror are left out.
func TestStateIgnoresRoutes(t *testing.T) {
	s := newState(unix.RT_TABLE_MAIN)
	other := nlRoute("198.51.100.0/24", 0, "2")
	other.Table = 100
	local := nlRoute("192.0.2.10/32", 0, "2")
	local.Type = unix.RTN_LOCAL
	bcast := nlRoute("192.0.2.255/32", 0, "2")
	bcast.Type = unix.RTN_BROADCAST
	tos := nlRoute("203.0.113.0/24", 0, "2")
	tos.Tos = 0x10
	cloned := nlRoute("2001:db8::5/128", 0, "2")
	cloned.Flags = unix.RTM_F_CLONED
	for _, r := range []netlink.Route{other, local, bcast, tos, cloned} {
		s.routeUpdate(upd(unix.RTM_NEWROUTE, unix.NLM_F_EXCL, r))
	}
	if rs := s.routes(); len(rs) != 0 {
		t.Errorf("mirrored %+v", rs)
	}
	bh := nlRoute("203.0.113.0/24", 0, "1")
	bh.Type = unix.RTN_BLACKHOLE
	s.routeUpdate(upd(unix.RTM_NEWROUTE, unix.NLM_F_EXCL, bh))
	def := nlRoute("0.0.0.0/0", 0, "2/192.0.2.1")
	s.routeUpdate(upd(unix.RTM_NEWROUTE, unix.NLM_F_EXCL, def))
	rs := s.routes()
	slices.SortFunc(rs, compareRoutes)
	if len(rs) != 2 || rs[0].Dst != pfx("0.0.0.0/0") || !rs[1].Reject {
		t.Errorf("routes %+v, want the default route and a reject", rs)
	}
}

// Dead next hops of a multipath route are left out; weights come from
// rtnh_hops.
func TestStateMultipath(t *testing.T) {
	s := newState(unix.RT_TABLE_MAIN)
	r := nlRoute("203.0.113.0/24", 0, "2/192.0.2.1", "3/198.51.100.1", "2/192.0.2.9")
	r.MultiPath[1].Hops = 2
	r.MultiPath[2].Flags = unix.RTNH_F_DEAD
	s.routeUpdate(upd(unix.RTM_NEWROUTE, unix.NLM_F_EXCL, r))
	rs := s.routes()
	slices.SortFunc(rs, compareRoutes)
	if len(rs) != 2 || rs[0].Weight != 1 || rs[1].Weight != 3 || rs[1].Gateway != addr("198.51.100.1") {
		t.Errorf("routes %+v", rs)
	}
}
