package fib

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// benchTable fills a table with n routes of one family, with prefix
// lengths as a gateway's table has them (mostly /16 to /24 for IPv4, /32
// to /64 for IPv6, some host routes), through 8 resolved gateways on two
// links, plus a default route. It returns destinations inside the routes,
// so that lookups end on prefixes of every length.
func benchTable(tb testing.TB, v4 bool, n int) (*Table, []netip.Addr) {
	tb.Helper()
	r := rand.New(rand.NewPCG(uint64(n), 2))
	lens := []int{8, 12, 16, 16, 18, 20, 22, 24, 24, 24, 24, 28, 32}
	if !v4 {
		lens = []int{24, 32, 32, 40, 44, 48, 48, 48, 56, 60, 64, 64, 64, 128}
	}
	ps := randPrefixes(r, v4, n, lens)
	c := Contents{
		Links: []Link{{Index: 2, MAC: macA, MTU: 1500, Up: true}, {Index: 3, MAC: macB, MTU: 1500, Up: true}},
	}
	var gws []netip.Addr
	for i := range 8 {
		gw := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)})
		if !v4 {
			gw = netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(1 + i)})
		}
		gws = append(gws, gw)
		c.Neighbors = append(c.Neighbors, Neighbor{Ifindex: 2 + i%2, Addr: gw, MAC: macGW, State: NeighReachable})
	}
	def := pfx("0.0.0.0/0")
	if !v4 {
		def = pfx("::/0")
	}
	c.Routes = append(c.Routes, Route{Dst: def, Ifindex: 2, Gateway: gws[0]})
	for i, p := range ps {
		c.Routes = append(c.Routes, Route{Dst: p, Ifindex: 2 + i%2, Gateway: gws[i%8]})
	}
	tab := New()
	tab.Replace(c)
	dsts := make([]netip.Addr, 4096)
	for i := range dsts {
		dsts[i] = randIn(r, ps[r.IntN(len(ps))])
	}
	return tab, dsts
}

func BenchmarkLookup(b *testing.B) {
	for _, fam := range []struct {
		name string
		v4   bool
	}{{"v4", true}, {"v6", false}} {
		for _, n := range []int{10, 10000} {
			b.Run(fmt.Sprintf("%s/routes=%d", fam.name, n), func(b *testing.B) {
				tab, dsts := benchTable(b, fam.v4, n)
				var nh NextHop
				for _, d := range dsts {
					if r := tab.Lookup(d, &nh); r != OK {
						b.Fatalf("Lookup(%v) = %v", d, r)
					}
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					sinkResult = tab.Lookup(dsts[i&(len(dsts)-1)], &nh)
					i++
				}
			})
		}
	}
}

// BenchmarkLookupParallel is Lookup from every core at once, as workers do:
// lookups only read the table's memory, so this scales with cores.
func BenchmarkLookupParallel(b *testing.B) {
	tab, dsts := benchTable(b, true, 10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var nh NextHop
		i := 0
		for pb.Next() {
			tab.Lookup(dsts[i&(len(dsts)-1)], &nh)
			i++
		}
	})
}

// BenchmarkResolveLimited is Resolve for an address already requested,
// the common case while a next hop is being resolved and packets for it
// keep coming.
func BenchmarkResolveLimited(b *testing.B) {
	tab := New()
	a := addr("192.0.2.1")
	tab.Resolve(2, a)
	b.ReportAllocs()
	for b.Loop() {
		tab.Resolve(2, a)
	}
}

// BenchmarkBuild is what a route change costs the mirror: compiling the
// whole route table into a new snapshot.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			tab, _ := benchTable(b, true, n)
			f := tab.snap.Load().fwd
			links := tab.Links()
			b.ReportAllocs()
			for b.Loop() {
				buildFwd(links, f.addrs, f.list)
			}
		})
	}
}
