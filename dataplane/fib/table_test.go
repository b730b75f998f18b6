package fib

import (
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var (
	macA  = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB  = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	macGW = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	macG2 = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// testContents is a small gateway: eth1 (2) towards 192.0.2.0/24 and
// 2001:db8:1::/64, eth2 (3) towards 198.51.100.0/24 and 2001:db8:2::/64,
// default routes via 192.0.2.1 and 2001:db8:1::1.
func testContents() Contents {
	return Contents{
		Links: []Link{
			{Index: 2, Name: "eth1", MAC: macA, MTU: 1500, Up: true},
			{Index: 3, Name: "eth2", MAC: macB, MTU: 9000, Up: true},
		},
		Addrs: map[int][]netip.Prefix{
			2: {pfx("192.0.2.10/24"), pfx("fe80::a/64"), pfx("2001:db8:1::a/64")},
			3: {pfx("198.51.100.10/24"), pfx("fe80::b/64")},
		},
		Routes: []Route{
			{Dst: pfx("0.0.0.0/0"), Ifindex: 2, Gateway: addr("192.0.2.1")},
			{Dst: pfx("192.0.2.0/24"), Ifindex: 2, Src: addr("192.0.2.10")},
			{Dst: pfx("198.51.100.0/24"), Ifindex: 3},
			{Dst: pfx("203.0.113.0/24"), Ifindex: 3, Gateway: addr("198.51.100.1"), MTU: 1400},
			{Dst: pfx("203.0.113.128/25"), Reject: true},
			// A worse metric loses to the route above.
			{Dst: pfx("203.0.113.0/24"), Ifindex: 2, Gateway: addr("192.0.2.1"), Metric: 10},
			{Dst: pfx("::/0"), Ifindex: 2, Gateway: addr("fe80::1"), Metric: 1024},
			{Dst: pfx("2001:db8:1::/64"), Ifindex: 2, Metric: 256},
			{Dst: pfx("2001:db8:2::/64"), Ifindex: 3, Metric: 256},
			// IPv4 via an IPv6 gateway (RFC 5549).
			{Dst: pfx("192.0.2.128/25"), Ifindex: 3, Gateway: addr("fe80::2")},
		},
		Neighbors: []Neighbor{
			{Ifindex: 2, Addr: addr("192.0.2.1"), MAC: macGW, State: NeighReachable},
			{Ifindex: 2, Addr: addr("192.0.2.77"), MAC: macG2, State: NeighStale},
			{Ifindex: 2, Addr: addr("192.0.2.78"), MAC: macG2, State: NeighFailed},
			{Ifindex: 2, Addr: addr("fe80::1"), MAC: macGW, State: NeighDelay},
			{Ifindex: 3, Addr: addr("fe80::2"), MAC: macG2},
		},
	}
}

func TestLookup(t *testing.T) {
	tab := New()
	select {
	case <-tab.Ready():
		t.Fatal("ready before any content")
	default:
	}
	var nh NextHop
	if r := tab.Lookup(addr("192.0.2.1"), &nh); r != NoRoute {
		t.Fatalf("empty table: %v", r)
	}
	tab.Replace(testContents())
	<-tab.Ready()

	cases := []struct {
		dst  string
		res  Result
		want NextHop
	}{
		// Default route via a REACHABLE gateway.
		{"8.8.8.8", OK, NextHop{Ifindex: 2, Addr: addr("192.0.2.1"), SrcMAC: macA, DstMAC: macGW, MTU: 1500, Src: addr("192.0.2.10")}},
		// On-link: the destination is the next hop; STALE is usable.
		{"192.0.2.77", OK, NextHop{Ifindex: 2, Addr: addr("192.0.2.77"), SrcMAC: macA, DstMAC: macG2, MTU: 1500, Src: addr("192.0.2.10")}},
		// FAILED is not; nor is a missing entry.
		{"192.0.2.78", Unresolved, NextHop{Ifindex: 2, Addr: addr("192.0.2.78"), SrcMAC: macA, MTU: 1500, Src: addr("192.0.2.10")}},
		{"198.51.100.9", Unresolved, NextHop{Ifindex: 3, Addr: addr("198.51.100.9"), SrcMAC: macB, MTU: 9000, Src: addr("198.51.100.10")}},
		// Route MTU below the link's; the lower metric wins.
		{"203.0.113.5", Unresolved, NextHop{Ifindex: 3, Addr: addr("198.51.100.1"), SrcMAC: macB, MTU: 1400, Src: addr("198.51.100.10")}},
		// A reject route does not fall back to the /24 or the default.
		{"203.0.113.200", NoRoute, NextHop{}},
		// IPv4 via an IPv6 gateway; the source stays IPv4.
		{"192.0.2.200", OK, NextHop{Ifindex: 3, Addr: addr("fe80::2"), SrcMAC: macB, DstMAC: macG2, MTU: 9000, Src: addr("198.51.100.10")}},
		// IPv6: default via a link-local gateway in DELAY; the source
		// is the global address, not the link-local one.
		{"2001:db8:99::1", OK, NextHop{Ifindex: 2, Addr: addr("fe80::1"), SrcMAC: macA, DstMAC: macGW, MTU: 1500, Src: addr("2001:db8:1::a")}},
		// Only a link-local address: it is the source.
		{"2001:db8:2::5", Unresolved, NextHop{Ifindex: 3, Addr: addr("2001:db8:2::5"), SrcMAC: macB, MTU: 9000, Src: addr("fe80::b")}},
	}
	for _, c := range cases {
		nh := NextHop{DstMAC: [6]byte{0xff}}
		if c.res == NoRoute {
			nh = NextHop{}
		}
		r := tab.Lookup(addr(c.dst), &nh)
		if r != c.res || nh != c.want {
			t.Errorf("Lookup(%s) = %v %+v\nwant %v %+v", c.dst, r, nh, c.res, c.want)
		}
	}
	if r := tab.Lookup(netip.Addr{}, &nh); r != NoRoute {
		t.Errorf("invalid address: %v", r)
	}

	if l, ok := tab.Link(3); !ok || l.Name != "eth2" || l.MTU != 9000 {
		t.Errorf("Link(3) = %+v %v", l, ok)
	}
	if _, ok := tab.Link(9); ok {
		t.Error("Link(9) found")
	}
	if a := tab.Addrs(2); len(a) != 3 || a[0] != pfx("192.0.2.10/24") {
		t.Errorf("Addrs(2) = %v", a)
	}
	if n, ok := tab.Neighbor(3, addr("fe80::2")); !ok || n.State != NeighPermanent {
		t.Errorf("Neighbor = %+v %v (State 0 should read as PERMANENT)", n, ok)
	}
	if got := len(tab.Routes()); got != 10 {
		t.Errorf("Routes: %d, want 10", got)
	}
}

// A lookup that uses a STALE entry marks it for the mirror to refresh;
// other states are not marked.
func TestLookupMarksStale(t *testing.T) {
	tab := New()
	tab.Replace(testContents())
	s := tab.snap.Load()
	stale := s.neigh.find(keyOf(addr("192.0.2.77")), neighID(2, true))
	reach := s.neigh.find(keyOf(addr("192.0.2.1")), neighID(2, true))
	var nh NextHop
	tab.Lookup(addr("8.8.8.8"), &nh)
	if stale.used.Load() || reach.used.Load() {
		t.Fatal("marked before use")
	}
	tab.Lookup(addr("192.0.2.77"), &nh)
	if !stale.used.Load() {
		t.Error("STALE entry not marked by its lookup")
	}
	if reach.used.Load() {
		t.Error("REACHABLE entry marked")
	}
}

// ECMP: a destination always takes the same next hop, destinations spread
// over the next hops in proportion to their weights, and the choice does
// not depend on the order in which the routes were given.
func TestECMP(t *testing.T) {
	c := testContents()
	c.Routes = append(c.Routes,
		Route{Dst: pfx("100.64.0.0/10"), Ifindex: 2, Gateway: addr("192.0.2.1"), Weight: 1},
		Route{Dst: pfx("100.64.0.0/10"), Ifindex: 2, Gateway: addr("192.0.2.2"), Weight: 1},
		Route{Dst: pfx("100.64.0.0/10"), Ifindex: 3, Gateway: addr("198.51.100.1"), Weight: 2},
	)
	a, b := New(), New()
	a.Replace(c)
	n := len(c.Routes)
	c.Routes[n-1], c.Routes[n-3] = c.Routes[n-3], c.Routes[n-1]
	b.Replace(c)

	counts := map[netip.Addr]int{}
	const N = 40000
	for i := range N {
		dst := netip.AddrFrom4([4]byte{100, 64 + byte(i>>16)&63, byte(i >> 8), byte(i)})
		var x, y, z NextHop
		a.Lookup(dst, &x)
		a.Lookup(dst, &y)
		b.Lookup(dst, &z)
		if x != y || x != z {
			t.Fatalf("%v: %+v, then %+v, and %+v with the routes reordered", dst, x, y, z)
		}
		counts[x.Addr]++
	}
	want := map[netip.Addr]float64{addr("192.0.2.1"): 0.25, addr("192.0.2.2"): 0.25, addr("198.51.100.1"): 0.5}
	for gw, share := range want {
		got := float64(counts[gw]) / N
		if math.Abs(got-share) > 0.02 {
			t.Errorf("%v carries %.3f of destinations, want %.2f", gw, got, share)
		}
	}
}

// Resolve passes one request per address per ResolveInterval, and drops
// requests when nobody takes them, without blocking.
func TestResolveRateLimit(t *testing.T) {
	tab := New()
	a, b := addr("192.0.2.1"), addr("2001:db8::1")
	for range 100 {
		tab.Resolve(2, a)
		tab.Resolve(2, b)
	}
	if n := len(tab.resolve); n != 2 {
		t.Fatalf("%d requests queued, want 2", n)
	}
	r1, r2 := <-tab.resolve, <-tab.resolve
	if r1 != (resolveReq{2, a}) || r2 != (resolveReq{2, b}) {
		t.Errorf("requests %+v %+v", r1, r2)
	}
	time.Sleep(ResolveInterval + 10*time.Millisecond)
	tab.Resolve(2, a)
	if n := len(tab.resolve); n != 1 {
		t.Fatalf("after the interval: %d requests queued, want 1", n)
	}
	// A full queue drops rather than blocks.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 4 * resolveQueue {
			tab.Resolve(2, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Resolve blocked on a full queue")
	}
	if n := len(tab.resolve); n != resolveQueue {
		t.Errorf("%d requests queued, want the queue full (%d)", n, resolveQueue)
	}
}

var sinkResult Result

// Lookups allocate nothing, whatever their result and family; nor does
// Resolve, rate-limited or queueing.
func TestLookupAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on synchronization; make test reruns this without -race")
	}
	tab := New()
	c := testContents()
	c.Routes = append(c.Routes,
		Route{Dst: pfx("100.64.0.0/10"), Ifindex: 2, Gateway: addr("192.0.2.1")},
		Route{Dst: pfx("100.64.0.0/10"), Ifindex: 3, Gateway: addr("198.51.100.1")},
	)
	tab.Replace(c)
	var nh NextHop
	for _, d := range []string{"8.8.8.8", "192.0.2.77", "198.51.100.9", "203.0.113.200", "100.64.1.2", "2001:db8:99::1", "2001:db8:2::5"} {
		dst := addr(d)
		if n := testing.AllocsPerRun(1000, func() { sinkResult = tab.Lookup(dst, &nh) }); n != 0 {
			t.Errorf("Lookup(%s): %v allocations", d, n)
		}
	}
	var i byte
	if n := testing.AllocsPerRun(1000, func() {
		i++
		tab.Resolve(2, netip.AddrFrom4([4]byte{192, 0, 2, i}))
	}); n != 0 {
		t.Errorf("Resolve: %v allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() { tab.Resolve(2, addr("192.0.2.1")) }); n != 0 {
		t.Errorf("Resolve, rate-limited: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = tab.Link(2); _ = tab.Addrs(2) }); n != 0 {
		t.Errorf("Link and Addrs: %v allocations", n)
	}
}

// Lookups running while a writer replaces the contents see either the old
// or the new state, never a mix (run with -race).
func TestLookupConcurrentReplace(t *testing.T) {
	tab := New()
	c1, c2 := testContents(), testContents()
	for i := range c2.Routes {
		if c2.Routes[i].Dst == pfx("0.0.0.0/0") {
			c2.Routes[i].Ifindex, c2.Routes[i].Gateway = 3, addr("198.51.100.1")
		}
	}
	c2.Neighbors = append(c2.Neighbors, Neighbor{Ifindex: 3, Addr: addr("198.51.100.1"), MAC: macG2})
	tab.Replace(c1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var nh NextHop
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r := tab.Lookup(addr("8.8.8.8"), &nh); r != OK {
					t.Errorf("lookup: %v", r)
					return
				}
				ok1 := nh.Ifindex == 2 && nh.DstMAC == macGW && nh.SrcMAC == macA
				ok2 := nh.Ifindex == 3 && nh.DstMAC == macG2 && nh.SrcMAC == macB
				if !ok1 && !ok2 {
					t.Errorf("torn next hop %+v", nh)
					return
				}
			}
		})
	}
	for i := range 200 {
		if i%2 == 0 {
			tab.Replace(c2)
		} else {
			tab.Replace(c1)
		}
	}
	close(stop)
	wg.Wait()
}
