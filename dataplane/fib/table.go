package fib

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Link is a network interface as the kernel describes it.
type Link struct {
	Index int // the kernel's ifindex, which AF_XDP sockets bind to
	Name  string
	// MAC is the interface's Ethernet address, the source of the frames
	// sent through it; zero for interfaces without one.
	MAC [6]byte
	MTU int // the largest IP packet the interface sends
	// Up is true when the interface is administratively up and has
	// carrier (IFF_UP and IFF_RUNNING): what `ip link` shows as UP and
	// LOWER_UP.
	Up bool
}

// Route is one next hop of a route of the mirrored table. A route with
// several next hops (ECMP) is several Routes with the same Dst and Metric.
type Route struct {
	// Dst is the destination prefix, masked; 0.0.0.0/0 and ::/0 are the
	// default routes.
	Dst     netip.Prefix
	Ifindex int
	// Gateway is the next hop's address, invalid for an on-link route
	// (the destination itself is the next hop). It can be of the other
	// family than Dst: an IPv4 route via an IPv6 gateway (RFC 5549).
	Gateway netip.Addr
	// Src is the route's preferred source address, invalid when it has
	// none.
	Src netip.Addr
	// MTU is the route's MTU metric, 0 when the link's MTU applies.
	MTU int
	// Metric is the route's priority: of the routes to one Dst only those
	// with the lowest metric are used, as in the kernel.
	Metric int
	// Weight is the next hop's share of an ECMP route's traffic; 0
	// counts as 1.
	Weight int
	// Reject marks a route that drops what it matches (blackhole,
	// unreachable, prohibit, throw): a lookup that ends on it finds no
	// route rather than falling back to a shorter prefix.
	Reject bool
}

// NextHop is where a lookup says a packet goes: everything a worker needs
// to write the Ethernet header and to check the packet's size.
type NextHop struct {
	Ifindex int
	// Addr is the gateway, or the destination itself when it is on-link:
	// the address whose neighbour entry gives DstMAC, and the one to pass
	// to Resolve.
	Addr           netip.Addr
	SrcMAC, DstMAC [6]byte
	// MTU is the smaller of the route's MTU and the link's.
	MTU int
	// Src is the route's preferred source address or, without one, an
	// address of the egress interface of the destination's family: the
	// source of ICMP errors and of locally built packets. Invalid when
	// the interface has none.
	Src netip.Addr
}

// Result is the outcome of a lookup. The zero value is NoRoute so that an
// unset Result never reads as a usable next hop.
type Result uint8

const (
	// NoRoute means that no route matches, or that the matching route
	// rejects: the packet gets an ICMP destination unreachable, or is
	// dropped.
	NoRoute Result = iota
	// Unresolved means that a route matches but the link-layer address of
	// its next hop is unknown or no longer usable. The NextHop is filled
	// except DstMAC; ask the kernel with [Table.Resolve] and hold or drop
	// the packet.
	Unresolved
	// OK means that the NextHop is complete.
	OK
)

// String returns the result's name, for logs and test failures.
func (r Result) String() string {
	switch r {
	case NoRoute:
		return "no route"
	case Unresolved:
		return "unresolved"
	case OK:
		return "ok"
	}
	return "invalid"
}

// Table is the data plane's view of the kernel's routes, neighbours, links
// and addresses. Any number of goroutines look things up in it at once
// without locks or allocations; one writer ([Mirror] or [Table.Replace])
// keeps it current by publishing immutable snapshots.
type Table struct {
	// snap is the current snapshot. Writers replace it whole with one
	// atomic store; a reader works on the one it loaded, which the
	// garbage collector keeps alive until no reader holds it, so readers
	// need no grace period and never see a half-applied change.
	snap atomic.Pointer[snapshot]

	// writeMu serializes writers, so that two publishers never lose
	// each other's changes to the parts they do not rebuild.
	writeMu sync.Mutex

	readyOnce sync.Once
	ready     chan struct{}

	// resolve carries Resolve's requests to the goroutine that sends
	// them to the kernel; requests that do not fit are dropped.
	resolve chan resolveReq
	// resolveNext is a lossy table of per-address deadlines (nanoseconds
	// since epoch) before which Resolve sends nothing more for the
	// addresses hashed to the slot.
	resolveNext [resolveSlots]atomic.Int64
	epoch       time.Time
}

// snapshot is one published state of a Table. Every part is immutable
// except neighEntry.used; parts that did not change are shared between
// successive snapshots.
type snapshot struct {
	fwd   *fwd
	neigh neighTable
}

// fwd is what the routes, links and addresses compile to; it is rebuilt
// when any of them changes, which is rare, and kept when only neighbours
// change, which is frequent.
type fwd struct {
	v4, v6 lpm
	routes []fwdRoute // indexed by the lpms' values
	links  map[int]Link
	addrs  map[int][]netip.Prefix
	list   []Route // the routes as given, for Routes
}

// fwdRoute is the route a prefix resolves to, with its next hops
// precomputed from the links and addresses.
type fwdRoute struct {
	reject bool
	hops   []hop
	// cum holds the hops' cumulative weights when there are several,
	// total their sum.
	cum   []uint32
	total uint32
}

type hop struct {
	ifindex int
	gw      netip.Addr
	gwKey   key128 // the gateway's neighbour key, when gw is valid
	gwID    uint64
	src     netip.Addr
	srcMAC  [6]byte
	mtu     int
}

// New returns an empty table: every lookup finds no route until a writer
// fills it.
func New() *Table {
	t := &Table{
		ready:   make(chan struct{}),
		resolve: make(chan resolveReq, resolveQueue),
		epoch:   time.Now(),
	}
	t.snap.Store(&snapshot{fwd: &fwd{}})
	return t
}

// Ready returns a channel closed once the table holds a complete state:
// after Mirror's first full dump, or the first Replace. Workers started
// before then find no routes.
func (t *Table) Ready() <-chan struct{} { return t.ready }

func (t *Table) publish(s *snapshot) {
	t.snap.Store(s)
	t.readyOnce.Do(func() { close(t.ready) })
}

// Lookup finds the route to dst, picks one of its next hops (by a hash of
// dst when there are several, so that a destination's packets keep one
// path and arrive in order), and the next hop's link-layer address. It
// fills nh and returns OK, or Unresolved with nh filled except DstMAC, or
// NoRoute with nh unchanged. It never allocates or blocks.
//
// Usable neighbour states are the kernel's NUD_VALID ones: REACHABLE,
// STALE, DELAY, PROBE, PERMANENT and NOARP. A lookup that uses a STALE
// entry marks it, and the mirror asks the kernel to confirm marked entries
// (see [Mirror]): the kernel never sees the packets that the data plane
// sends, so without this it would never move them back to REACHABLE, nor
// notice a neighbour that has gone.
func (t *Table) Lookup(dst netip.Addr, nh *NextHop) Result {
	s := t.snap.Load()
	f := s.fwd
	var i int32
	k := keyOf(dst)
	is4 := dst.Is4()
	switch {
	case is4:
		i = f.v4.lookup(k)
	case dst.Is6():
		i = f.v6.lookup(k)
	default:
		return NoRoute
	}
	if i < 0 {
		return NoRoute
	}
	r := &f.routes[i]
	if r.reject {
		return NoRoute
	}
	h := &r.hops[0]
	if len(r.hops) > 1 {
		h = &r.hops[r.pick(k)]
	}
	nh.Ifindex = h.ifindex
	nh.SrcMAC = h.srcMAC
	nh.MTU = h.mtu
	nh.Src = h.src
	var e *neighEntry
	if h.gwID != 0 {
		nh.Addr = h.gw
		e = s.neigh.find(h.gwKey, h.gwID)
	} else {
		nh.Addr = dst
		e = s.neigh.find(k, neighID(h.ifindex, is4))
	}
	if e == nil || e.state&nudValid == 0 {
		nh.DstMAC = [6]byte{}
		return Unresolved
	}
	if e.state&nudStale != 0 && !e.used.Load() {
		// Load before Store: workers share the entry's cache line, and
		// only the first of them to see it STALE writes.
		e.used.Store(true)
	}
	nh.DstMAC = e.mac
	return OK
}

// pick chooses one of several next hops by a hash of the destination,
// weighted.
func (r *fwdRoute) pick(k key128) int {
	h := fmix64(k.hi ^ fmix64(k.lo))
	w := uint32((uint64(uint32(h)) * uint64(r.total)) >> 32)
	for i, c := range r.cum {
		if w < c {
			return i
		}
	}
	return len(r.cum) - 1
}

// Link returns the interface with the given index.
func (t *Table) Link(ifindex int) (Link, bool) {
	l, ok := t.snap.Load().fwd.links[ifindex]
	return l, ok
}

// Addrs returns the addresses of the interface with the given index, each
// with its prefix length, in the kernel's order (for IPv4 the primary
// address first). The slice is shared: callers must not modify it.
func (t *Table) Addrs(ifindex int) []netip.Prefix {
	return t.snap.Load().fwd.addrs[ifindex]
}

// Routes returns a copy of the routes the table holds, for inspection and
// tests; it allocates.
func (t *Table) Routes() []Route {
	l := t.snap.Load().fwd.list
	return append([]Route(nil), l...)
}

// Links returns a copy of the table's links, for inspection and tests; it
// allocates.
func (t *Table) Links() []Link {
	m := t.snap.Load().fwd.links
	out := make([]Link, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Link) int { return cmp.Compare(a.Index, b.Index) })
	return out
}
