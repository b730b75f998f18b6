package fib

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/espx/espx/internal/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// settle bounds how long a test waits for a kernel change to show up in
// the table: notifications take microseconds, ARP and ND on a veth pair
// a millisecond, so this only matters on a badly loaded machine.
const settle = 2 * time.Second

// fixture is two namespaces joined by a veth pair: "va" in a, where the
// mirror runs, with 192.0.2.1/24 and 2001:db8:1::1/64, and "vb" in b with
// 192.0.2.2/24 and 2001:db8:1::2/64.
type fixture struct {
	a, b   *netnstest.NS
	va, vb netlink.Link
	tab    *Table
	errs   *errLog
}

// errLog collects what Mirror reports through OnError.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	netnstest.Require(t)
	f := &fixture{a: netnstest.New(t, "fib"), b: netnstest.New(t, "fib"), tab: New(), errs: &errLog{}}
	// No duplicate address detection on the links about to be created:
	// while an interface's link-local address is tentative, the kernel
	// cannot solicit a neighbour for Resolve (see mirror.resolver), and
	// tests would wait out DAD.
	for _, ns := range []*netnstest.NS{f.a, f.b} {
		err := ns.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	netnstest.Veth(t, f.a, "va", f.b, "vb")
	f.a.IP(t, "addr", "add", "192.0.2.1/24", "dev", "va")
	f.a.IP(t, "addr", "add", "2001:db8:1::1/64", "dev", "va")
	f.b.IP(t, "addr", "add", "192.0.2.2/24", "dev", "vb")
	f.b.IP(t, "addr", "add", "2001:db8:1::2/64", "dev", "vb")
	f.va = linkIn(t, f.a, "va")
	f.vb = linkIn(t, f.b, "vb")
	return f
}

// linkIn reads a link from a namespace.
func linkIn(t *testing.T, ns *netnstest.NS, name string) netlink.Link {
	t.Helper()
	h := nlHandle(t, ns)
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("%s in %s: %v", name, ns.Name, err)
	}
	return l
}

// nlHandle is a netlink handle in a namespace, closed at the end of the
// test.
func nlHandle(t *testing.T, ns *netnstest.NS) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// mirror runs Mirror on a thread inside a, the way espxd runs it in its
// own namespace, until the test ends, and waits for its first dump.
func (f *fixture) mirror(t *testing.T, opts MirrorOptions) {
	t.Helper()
	opts.OnError = f.errs.add
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() {
		exited <- f.a.Do(func() error { return Mirror(ctx, f.tab, opts) })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("Mirror: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Mirror did not return within 5 s of its context's end")
		}
	})
	select {
	case <-f.tab.Ready():
	case err := <-exited:
		t.Fatalf("Mirror: %v", err)
	case <-time.After(settle):
		t.Fatal("no first dump within", settle)
	}
}

// eventually polls cond until it holds, or fails the test after settle.
func eventually(t *testing.T, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, settle, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// routeTo waits until a lookup of dst gives res with next hop gw (the
// destination itself when gw is empty) and the given MTU (unchecked when
// 0).
func (f *fixture) routeTo(t *testing.T, dst string, res Result, gw string, mtu int) NextHop {
	t.Helper()
	d := netip.MustParseAddr(dst)
	want := d
	if gw != "" {
		want = netip.MustParseAddr(gw)
	}
	var nh NextHop
	eventually(t, fmt.Sprintf("%s: %v via %s", dst, res, want), func() (bool, string) {
		nh = NextHop{}
		r := f.tab.Lookup(d, &nh)
		if res == NoRoute {
			return r == NoRoute, fmt.Sprintf("%v %+v", r, nh)
		}
		ok := r == res && nh.Addr == want && nh.Ifindex == f.va.Attrs().Index && (mtu == 0 || nh.MTU == mtu)
		return ok, fmt.Sprintf("%v %+v", r, nh)
	})
	return nh
}

func mac6(hw []byte) (m [6]byte) {
	copy(m[:], hw)
	return m
}

// The mirror follows route changes of both families: on-link, via a
// gateway, default, metrics, route MTU, reject routes, ECMP, IPv4
// alternative routes, and leaves other tables alone.
func TestMirrorRoutes(t *testing.T) {
	f := newFixture(t)
	f.mirror(t, MirrorOptions{})
	a := f.a

	// The kernel's connected routes, from the first dump.
	nh := f.routeTo(t, "192.0.2.2", Unresolved, "", 1500)
	if nh.SrcMAC != mac6(f.va.Attrs().HardwareAddr) || nh.Src != addr("192.0.2.1") {
		t.Errorf("connected route: %+v", nh)
	}
	nh = f.routeTo(t, "2001:db8:1::2", Unresolved, "", 1500)
	if nh.Src != addr("2001:db8:1::1") {
		t.Errorf("connected IPv6 route: source %v", nh.Src)
	}
	f.routeTo(t, "203.0.113.9", NoRoute, "", 0)

	// Via a gateway, with a route MTU; then deleted.
	a.IP(t, "route", "add", "203.0.113.0/24", "via", "192.0.2.2", "mtu", "1400")
	f.routeTo(t, "203.0.113.9", Unresolved, "192.0.2.2", 1400)
	a.IP(t, "-6", "route", "add", "2001:db8:5::/48", "via", "2001:db8:1::2", "mtu", "1300")
	f.routeTo(t, "2001:db8:5::9", Unresolved, "2001:db8:1::2", 1300)

	// Default routes catch the rest; the longer prefix still wins.
	a.IP(t, "route", "add", "default", "via", "192.0.2.3")
	a.IP(t, "-6", "route", "add", "default", "via", "2001:db8:1::3")
	f.routeTo(t, "198.51.100.7", Unresolved, "192.0.2.3", 1500)
	f.routeTo(t, "2001:db8:77::1", Unresolved, "2001:db8:1::3", 1500)
	f.routeTo(t, "203.0.113.9", Unresolved, "192.0.2.2", 1400)

	a.IP(t, "route", "del", "203.0.113.0/24")
	a.IP(t, "-6", "route", "del", "2001:db8:5::/48")
	f.routeTo(t, "203.0.113.9", Unresolved, "192.0.2.3", 1500)
	f.routeTo(t, "2001:db8:5::9", Unresolved, "2001:db8:1::3", 1500)

	// The lowest metric wins, and the next takes over when it goes.
	a.IP(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.4", "metric", "10")
	a.IP(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.5", "metric", "5")
	f.routeTo(t, "198.51.100.7", Unresolved, "192.0.2.5", 0)
	a.IP(t, "route", "del", "198.51.100.0/24", "metric", "5")
	f.routeTo(t, "198.51.100.7", Unresolved, "192.0.2.4", 0)

	// IPv4 alternative routes to one key: the first one is used.
	a.IP(t, "route", "add", "198.51.100.128/25", "via", "192.0.2.6")
	a.IP(t, "route", "append", "198.51.100.128/25", "via", "192.0.2.7")
	f.routeTo(t, "198.51.100.200", Unresolved, "192.0.2.6", 0)
	a.IP(t, "route", "prepend", "198.51.100.128/25", "via", "192.0.2.8")
	f.routeTo(t, "198.51.100.200", Unresolved, "192.0.2.8", 0)
	a.IP(t, "route", "del", "198.51.100.128/25", "via", "192.0.2.8")
	a.IP(t, "route", "del", "198.51.100.128/25", "via", "192.0.2.6")
	f.routeTo(t, "198.51.100.200", Unresolved, "192.0.2.7", 0)

	// Reject routes end the lookup.
	a.IP(t, "route", "add", "blackhole", "198.51.100.64/26")
	a.IP(t, "-6", "route", "add", "unreachable", "2001:db8:66::/48")
	f.routeTo(t, "198.51.100.70", NoRoute, "", 0)
	f.routeTo(t, "2001:db8:66::1", NoRoute, "", 0)

	// Other tables are not mirrored.
	a.IP(t, "route", "add", "203.0.113.64/26", "via", "192.0.2.9", "table", "100")
	a.IP(t, "route", "add", "203.0.113.0/28", "via", "192.0.2.10")
	f.routeTo(t, "203.0.113.1", Unresolved, "192.0.2.10", 0) // a later change has arrived...
	f.routeTo(t, "203.0.113.70", Unresolved, "192.0.2.3", 0) // ...and table 100 did not

	// ECMP, IPv4 and IPv6: destinations spread over the next hops; an
	// IPv6 next hop deleted alone leaves the others.
	a.IP(t, "route", "add", "203.0.113.128/25", "nexthop", "via", "192.0.2.11", "nexthop", "via", "192.0.2.12")
	a.IP(t, "-6", "route", "add", "2001:db8:e::/48", "nexthop", "via", "2001:db8:1::11", "nexthop", "via", "2001:db8:1::12")
	spread := func(prefix string, n int) map[netip.Addr]int {
		got := map[netip.Addr]int{}
		p := pfx(prefix)
		a := p.Addr()
		for range n {
			a = a.Next()
			var nh NextHop
			if f.tab.Lookup(a, &nh) != NoRoute {
				got[nh.Addr]++
			}
		}
		return got
	}
	eventually(t, "IPv4 ECMP", func() (bool, string) {
		g := spread("203.0.113.128/25", 100)
		return g[addr("192.0.2.11")] > 10 && g[addr("192.0.2.12")] > 10, fmt.Sprint(g)
	})
	eventually(t, "IPv6 ECMP", func() (bool, string) {
		g := spread("2001:db8:e::/48", 100)
		return g[addr("2001:db8:1::11")] > 10 && g[addr("2001:db8:1::12")] > 10, fmt.Sprint(g)
	})
	a.IP(t, "-6", "route", "del", "2001:db8:e::/48", "via", "2001:db8:1::11")
	eventually(t, "IPv6 ECMP after deleting one next hop", func() (bool, string) {
		g := spread("2001:db8:e::/48", 100)
		return len(g) == 1 && g[addr("2001:db8:1::12")] == 100, fmt.Sprint(g)
	})
	for _, e := range f.errs.all() {
		t.Errorf("Mirror reported: %v", e)
	}
}

// sniff captures frames on an interface of a namespace from now until the
// test ends, and closes the returned channel when one matches.
func sniff(t *testing.T, ns *netnstest.NS, ifindex int, match func(frame []byte) bool) <-chan struct{} {
	t.Helper()
	proto := int(htons(unix.ETH_P_ALL))
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	})
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	tv := unix.NsecToTimeval((20 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	seen, stop, exited := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err == nil && match(buf[:n]) {
				close(seen)
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-exited
		unix.Close(fd)
	})
	return seen
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// isARPRequest matches an ARP request from src for target.
func isARPRequest(src [6]byte, target netip.Addr) func([]byte) bool {
	return func(b []byte) bool {
		return len(b) >= 42 && b[12] == 0x08 && b[13] == 0x06 && // ARP
			b[20] == 0 && b[21] == 1 && // request
			[6]byte(b[22:28]) == src && [4]byte(b[38:42]) == target.As4()
	}
}

// isNS matches an ICMPv6 neighbour solicitation from src for target.
func isNS(src [6]byte, target netip.Addr) func([]byte) bool {
	return func(b []byte) bool {
		return len(b) >= 78 && b[12] == 0x86 && b[13] == 0xdd && // IPv6
			[6]byte(b[6:12]) == src && b[20] == 58 && b[54] == 135 && // ICMPv6 NS
			[16]byte(b[62:78]) == target.As16()
	}
}

// Resolve makes the kernel send an ARP request or ND solicitation on the
// wire, the answer makes the kernel's entry REACHABLE, and the lookup that
// was Unresolved becomes OK with the peer's MAC.
func TestMirrorResolve(t *testing.T) {
	f := newFixture(t)
	f.mirror(t, MirrorOptions{})
	src, peer := mac6(f.va.Attrs().HardwareAddr), mac6(f.vb.Attrs().HardwareAddr)
	kernel := nlHandle(t, f.a)

	for _, c := range []struct {
		peer  string
		match func([]byte) bool
	}{
		{"192.0.2.2", isARPRequest(src, addr("192.0.2.2"))},
		{"2001:db8:1::2", isNS(src, addr("2001:db8:1::2"))},
	} {
		t.Run(c.peer, func(t *testing.T) {
			dst := addr(c.peer)
			nh := f.routeTo(t, c.peer, Unresolved, "", 0)
			if nh.DstMAC != ([6]byte{}) {
				t.Errorf("Unresolved with DstMAC %x", nh.DstMAC)
			}
			seen := sniff(t, f.b, f.vb.Attrs().Index, c.match)
			f.tab.Resolve(nh.Ifindex, nh.Addr) // once: the kernel retransmits
			select {
			case <-seen:
			case <-time.After(settle):
				ns, _ := kernel.NeighList(0, netlink.FAMILY_ALL)
				t.Fatalf("no solicitation on the wire; errors %v; kernel %v", f.errs.all(), ns)
			}
			nh = f.routeTo(t, c.peer, OK, "", 0)
			if nh.DstMAC != peer {
				t.Errorf("DstMAC %x, want the peer's %x", nh.DstMAC, peer)
			}
			ns, err := kernel.NeighList(f.va.Attrs().Index, netlink.FAMILY_ALL)
			if err != nil {
				t.Fatal(err)
			}
			state := -1
			for _, n := range ns {
				if a, _ := netip.AddrFromSlice(n.IP); a.Unmap() == dst {
					state = n.State
				}
			}
			if state != netlink.NUD_REACHABLE {
				t.Errorf("kernel entry state %v, want REACHABLE", NeighState(state))
			}
			if n, ok := f.tab.Neighbor(nh.Ifindex, dst); !ok || n.State != NeighReachable || n.MAC != peer {
				t.Errorf("mirrored entry %+v %v", n, ok)
			}
		})
	}

	// Nobody answers for 192.0.2.99: the kernel asks, its entry is
	// INCOMPLETE (which it does not notify: the mirror learns of the
	// entry when it fails), and the lookup stays Unresolved.
	t.Run("unanswered", func(t *testing.T) {
		dst := addr("192.0.2.99")
		nh := f.routeTo(t, "192.0.2.99", Unresolved, "", 0)
		seen := sniff(t, f.b, f.vb.Attrs().Index, isARPRequest(src, dst))
		f.tab.Resolve(nh.Ifindex, nh.Addr)
		select {
		case <-seen:
		case <-time.After(settle):
			t.Fatal("no ARP request on the wire")
		}
		ns, err := kernel.NeighList(f.va.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		state := -1
		for _, n := range ns {
			if a, _ := netip.AddrFromSlice(n.IP); a.Unmap() == dst {
				state = n.State
			}
		}
		if state != netlink.NUD_INCOMPLETE {
			t.Errorf("kernel entry state %v, want INCOMPLETE", NeighState(state))
		}
		if r := f.tab.Lookup(dst, &nh); r != Unresolved {
			t.Errorf("lookup %v", r)
		}
	})
}

// A STALE entry that lookups use is confirmed again: the mirror sends it
// through DELAY and PROBE back to REACHABLE, as the kernel would if it
// sent the packets itself.
func TestMirrorRefreshesStale(t *testing.T) {
	f := newFixture(t)
	// The kernel waits delay_first_probe_time (5 s) in DELAY; make it 1 s
	// so that the test stays short.
	err := f.a.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/neigh/va/delay_first_probe_time", []byte("1"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mirror(t, MirrorOptions{})
	peer := f.vb.Attrs().HardwareAddr.String()
	f.a.IP(t, "neigh", "replace", "192.0.2.2", "lladdr", peer, "dev", "va", "nud", "stale")
	var nh NextHop
	eventually(t, "STALE entry", func() (bool, string) {
		n, ok := f.tab.Neighbor(f.va.Attrs().Index, addr("192.0.2.2"))
		return ok && n.State == NeighStale, fmt.Sprintf("%+v", n)
	})
	if r := f.tab.Lookup(addr("192.0.2.2"), &nh); r != OK {
		t.Fatalf("lookup of a STALE neighbour: %v", r)
	}
	// Refresh tick (up to 1 s), DELAY (1 s), a probe and its answer.
	deadline := time.Now().Add(refreshInterval + time.Second + settle)
	for {
		n, _ := f.tab.Neighbor(f.va.Attrs().Index, addr("192.0.2.2"))
		if n.State == NeighReachable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry still %v", n.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Link changes reach the table: MTU (and the next hops' MTU), carrier and
// admin state, and the routes the kernel flushes without notifications
// when a link goes down; addresses come and go with their routes.
func TestMirrorLinksAndAddrs(t *testing.T) {
	f := newFixture(t)
	f.mirror(t, MirrorOptions{})
	idx := f.va.Attrs().Index
	if l, ok := f.tab.Link(idx); !ok || l.Name != "va" || !l.Up || l.MTU != 1500 || l.MAC != mac6(f.va.Attrs().HardwareAddr) {
		t.Fatalf("Link(va) = %+v %v", l, ok)
	}
	f.a.IP(t, "route", "add", "203.0.113.0/24", "via", "192.0.2.2")

	f.a.IP(t, "link", "set", "va", "mtu", "1400")
	eventually(t, "MTU 1400", func() (bool, string) {
		l, _ := f.tab.Link(idx)
		return l.MTU == 1400, fmt.Sprintf("%+v", l)
	})
	f.routeTo(t, "203.0.113.1", Unresolved, "192.0.2.2", 1400)

	// Carrier: the peer goes down.
	f.b.IP(t, "link", "set", "vb", "down")
	eventually(t, "va without carrier", func() (bool, string) {
		l, _ := f.tab.Link(idx)
		return !l.Up, fmt.Sprintf("%+v", l)
	})
	f.b.IP(t, "link", "set", "vb", "up")

	// Admin down flushes the IPv4 routes through va, with no RTM_DELROUTE.
	f.a.IP(t, "link", "set", "va", "down")
	f.routeTo(t, "203.0.113.1", NoRoute, "", 0)
	f.routeTo(t, "192.0.2.2", NoRoute, "", 0)
	f.a.IP(t, "link", "set", "va", "up")
	f.routeTo(t, "192.0.2.2", Unresolved, "", 1400)

	// Addresses.
	f.a.IP(t, "addr", "add", "198.51.100.1/24", "dev", "va")
	eventually(t, "address added", func() (bool, string) {
		as := f.tab.Addrs(idx)
		for _, a := range as {
			if a == pfx("198.51.100.1/24") {
				return true, ""
			}
		}
		return false, fmt.Sprint(as)
	})
	nh := f.routeTo(t, "198.51.100.7", Unresolved, "", 0)
	if nh.Src != addr("198.51.100.1") {
		t.Errorf("source %v, want the new address", nh.Src)
	}
	f.a.IP(t, "addr", "del", "198.51.100.1/24", "dev", "va")
	f.routeTo(t, "198.51.100.7", NoRoute, "", 0)
	if as := f.tab.Addrs(idx); len(as) == 0 || as[0] != pfx("192.0.2.1/24") {
		t.Errorf("addresses %v", as)
	}

	// A link that goes away takes its routes along.
	netnstest.Veth(t, f.a, "wa", f.b, "wb")
	f.a.IP(t, "route", "add", "203.0.113.128/25", "dev", "wa")
	var didx int
	eventually(t, "route through wa", func() (bool, string) {
		var nh NextHop
		r := f.tab.Lookup(addr("203.0.113.200"), &nh)
		didx = nh.Ifindex
		return r == Unresolved && nh.Ifindex != idx, fmt.Sprintf("%v %+v", r, nh)
	})
	f.a.IP(t, "link", "del", "wa")
	eventually(t, "wa gone", func() (bool, string) {
		_, ok := f.tab.Link(didx)
		var nh NextHop
		r := f.tab.Lookup(addr("203.0.113.200"), &nh)
		return !ok && r == NoRoute, fmt.Sprintf("link still there: %v; %v %+v", ok, r, nh)
	})
}

// A namespace handle and another table can be given in the options.
func TestMirrorOptions(t *testing.T) {
	f := newFixture(t)
	f.a.IP(t, "route", "add", "203.0.113.0/24", "via", "192.0.2.2", "table", "100")
	f.a.IP(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.3")
	nsh, err := netns.GetFromName(f.a.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsh.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	// From this goroutine, whatever namespace its thread is in.
	go func() { exited <- Mirror(ctx, f.tab, MirrorOptions{Namespace: &nsh, TableID: 100}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-exited:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Mirror did not return")
		}
	})
	f.routeTo(t, "203.0.113.1", Unresolved, "192.0.2.2", 0)
	f.routeTo(t, "198.51.100.1", NoRoute, "", 0)
	f.a.IP(t, "route", "add", "203.0.113.128/25", "via", "192.0.2.4", "table", "100")
	f.routeTo(t, "203.0.113.200", Unresolved, "192.0.2.4", 0)
	if l, ok := f.tab.Link(f.va.Attrs().Index); !ok || l.Name != "va" {
		t.Errorf("links of the wrong namespace: %+v", f.tab.Links())
	}
}

// Mirror returns nil soon after its context ends, and leaves no goroutine
// behind: not its own, nor the netlink library's.
func TestMirrorStops(t *testing.T) {
	f := newFixture(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() { exited <- f.a.Do(func() error { return Mirror(ctx, f.tab, MirrorOptions{}) }) }()
	select {
	case <-f.tab.Ready():
	case err := <-exited:
		t.Fatal(err)
	case <-time.After(settle):
		t.Fatal("no first dump")
	}
	cancel()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("Mirror: %v", err)
		}
	case <-time.After(settle):
		t.Fatal("Mirror did not return")
	}
	eventually(t, "goroutines gone", func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= before, fmt.Sprintf("%d goroutines, %d before", n, before)
	})
}

// Notifications that overflow the socket (ENOBUFS) end the subscription;
// the mirror subscribes and dumps again, and ends up with every route.
func TestMirrorOverflowResyncs(t *testing.T) {
	f := newFixture(t)
	// The smallest buffer the kernel allows holds a few notifications.
	f.mirror(t, MirrorOptions{ReceiveBufferSize: 1, ReceiveBufferForce: true})
	const n = 4000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "route add 2001:db8:7::%x/128 via 2001:db8:1::2\n", i+1)
	}
	for i := range 256 {
		fmt.Fprintf(&b, "route add 203.0.113.%d/32 via 192.0.2.2\n", i)
	}
	batch := filepath.Join(t.TempDir(), "routes")
	if err := os.WriteFile(batch, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	f.a.IP(t, "-batch", batch)
	eventually(t, "every route", func() (bool, string) {
		got := 0
		for _, r := range f.tab.Routes() {
			if r.Dst.Bits() == 128 || r.Dst.Bits() == 32 {
				got++
			}
		}
		return got == n+256, fmt.Sprintf("%d routes of %d", got, n+256)
	})
	resynced := false
	for _, e := range f.errs.all() {
		// The library formats the receive error with %v: match its text.
		if errors.Is(e, ErrSubscription) && strings.Contains(e.Error(), unix.ENOBUFS.Error()) {
			resynced = true
		}
	}
	if !resynced {
		// A socket buffer of a few notifications cannot keep up with
		// thousands of routes added back to back: without an overflow
		// the buffer size option did not take.
		t.Errorf("no overflow reported (%v): the resync path went untested", f.errs.all())
	}
}

// Mirror refuses to start in a namespace it cannot enter, rather than
// mirror another one.
func TestMirrorBadNamespace(t *testing.T) {
	bad := netns.NsHandle(1 << 20) // not an open file
	done := make(chan error, 1)
	go func() { done <- Mirror(context.Background(), New(), MirrorOptions{Namespace: &bad}) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Mirror started in a namespace that does not exist")
		}
	case <-time.After(settle):
		t.Fatal("Mirror did not fail")
	}
}
