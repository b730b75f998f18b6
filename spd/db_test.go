package spd

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// The examples of ip-xfrm(8) for `ip xfrm policy set hthresh4 16 24
// hthresh6 56 64`, with the man page's verdicts.
func TestManPageThresholds(t *testing.T) {
	th := Thresholds{V4Local: 16, V4Remote: 24, V6Local: 56, V6Remote: 64}
	cases := []struct {
		policy string
		hashed bool
	}{
		{"dir out src 10.22.0.0/20 dst 10.24.1.0/24", true},
		{"dir out src 10.22.0.0/16 dst 10.24.0.0/16", false},
		// Inbound, the local side is the destination: /16 >= 16 and
		// the remote /32 >= 24.
		{"dir in src 10.24.1.1/32 dst 10.22.0.0/16", true},
		{"dir out src 3ffe:304:124:2200::/60 dst 3ffe:304:124:2401::/64", true},
		{"dir out src 3ffe:304:124:2200::/56 dst 3ffe:304:124:2400::/56", false},
		{"dir in src 3ffe:304:124:2401::2/128 dst 3ffe:304:124:2200::/56", true},
	}
	db := newDB(t, th)
	ids := []ID{0} // ids[n] is the n-th case's
	for _, c := range cases {
		id := mustInsert(t, db, xfrm(t, c.policy))
		ids = append(ids, id)
		if got := isHashed(t, db, id); got != c.hashed {
			t.Errorf("%s: hashed %v, want %v", c.policy, got, c.hashed)
		}
	}
	// Each is found by a packet inside it, whichever side it lives on.
	keys := []struct {
		dir Dir
		key string
		n   int // case number, 0 for none
	}{
		{DirOut, "10.22.3.4 10.24.1.9", 1},
		{DirOut, "10.22.200.4 10.24.7.9", 2},
		{DirIn, "10.24.1.1 10.22.9.9", 3},
		{DirIn, "10.24.1.2 10.22.9.9", 0},
		{DirOut, "3ffe:304:124:2201::1 3ffe:304:124:2401::5", 4},
		{DirOut, "3ffe:304:124:22ff::1 3ffe:304:124:2401::5", 5},
		{DirIn, "3ffe:304:124:2401::2 3ffe:304:124:22aa::1", 6},
		{DirFwd, "3ffe:304:124:2401::2 3ffe:304:124:22aa::1", 0},
	}
	for _, k := range keys {
		if got := lookupID(db, k.dir, key(t, k.key)); got != ids[k.n] {
			t.Errorf("%v %s: got %s, want %s", k.dir, k.key, describe(db, got), describe(db, ids[k.n]))
		}
	}
	// With the default thresholds only host-to-host policies hash.
	if err := db.SetThresholds(DefaultThresholds()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[1:] {
		if isHashed(t, db, id) {
			t.Errorf("%s hashed with the default thresholds", describe(db, id))
		}
	}
	host := mustInsert(t, db, xfrm(t, "dir in src 10.24.1.1/32 dst 10.22.0.1/32"))
	if !isHashed(t, db, host) {
		t.Error("host-to-host policy not hashed with the default thresholds")
	}
}

func TestValidation(t *testing.T) {
	p4, p6 := netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")
	ok := Policy{Selector: Selector{Local: p4, Remote: p4}, Action: Bypass}
	cases := []struct {
		name string
		mod  func(*Policy)
		err  error
	}{
		{"dir", func(p *Policy) { p.Dir = numDirs }, ErrDir},
		{"no action", func(p *Policy) { p.Action = 0 }, ErrAction},
		{"unknown action", func(p *Policy) { p.Action = Discard + 1 }, ErrAction},
		{"trap on bypass", func(p *Policy) { p.Trap = true }, ErrTrap},
		{"no local", func(p *Policy) { p.Local = netip.Prefix{} }, ErrPrefix},
		{"no remote", func(p *Policy) { p.Remote = netip.Prefix{} }, ErrPrefix},
		{"bad length", func(p *Policy) { p.Local = netip.PrefixFrom(p4.Addr(), 33) }, ErrPrefix},
		{"families", func(p *Policy) { p.Remote = p6 }, ErrFamily},
		{"mapped is v6", func(p *Policy) { p.Remote = netip.MustParsePrefix("::ffff:10.0.0.0/104") }, ErrFamily},
		{"ports without proto", func(p *Policy) { p.LocalPorts = Ports(80, 80) }, ErrPorts},
		{"ports with ESP", func(p *Policy) { p.Proto = 50; p.RemotePorts = Ports(80, 80) }, ErrPorts},
		{"reversed", func(p *Policy) { p.Proto = protoTCP; p.LocalPorts = Ports(90, 80) }, ErrPorts},
		{"ICMP type", func(p *Policy) { p.Proto = protoICMP; p.LocalPorts = Ports(8, 256) }, ErrPorts},
		{"ICMPv6 code", func(p *Policy) { p.Proto = protoICMPv6; p.RemotePorts = Ports(0, 300) }, ErrPorts},
	}
	db := newDB(t, DefaultThresholds())
	for _, c := range cases {
		p := ok
		c.mod(&p)
		if _, err := db.Insert(p); !errors.Is(err, c.err) {
			t.Errorf("%s: Insert: %v, want %v", c.name, err, c.err)
		}
		if _, err := db.InsertBatch([]Policy{ok, p}); !errors.Is(err, c.err) {
			t.Errorf("%s: InsertBatch: %v, want %v", c.name, err, c.err)
		}
	}
	if n := db.Len(); n != 0 {
		t.Errorf("%d policies installed by failed inserts", n)
	}
	// What is valid: ports with each port protocol, type and code with
	// ICMP, any port written as the full range, a trap on protect.
	valid := []func(*Policy){
		func(p *Policy) { p.Proto = protoTCP; p.LocalPorts = Ports(80, 80) },
		func(p *Policy) { p.Proto = protoUDP; p.RemotePorts = Ports(500, 4500) },
		func(p *Policy) { p.Proto = protoSCTP; p.RemotePorts = Ports(0, 0xffff) },
		func(p *Policy) { p.Proto = protoICMP; p.LocalPorts = Ports(8, 8); p.RemotePorts = Ports(0, 255) },
		func(p *Policy) { p.Proto = 50; p.LocalPorts = Ports(0, 0xffff) },
		func(p *Policy) { p.Action = Protect; p.Trap = true },
		func(p *Policy) {
			p.Local, p.Remote = netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("10.1.2.3/32")
		},
	}
	for i, mod := range valid {
		p := ok
		mod(&p)
		if _, err := db.Insert(p); err != nil {
			t.Errorf("valid policy %d (%v): %v", i, p, err)
		}
	}

	for _, th := range []Thresholds{{V4Local: 33}, {V4Remote: 33}, {V6Local: 129}, {V6Remote: 255}} {
		if _, err := New(th); !errors.Is(err, ErrThresholds) {
			t.Errorf("New(%v): %v, want ErrThresholds", th, err)
		}
		if err := db.SetThresholds(th); !errors.Is(err, ErrThresholds) {
			t.Errorf("SetThresholds(%v): %v, want ErrThresholds", th, err)
		}
	}
	if err := db.Delete(12345); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete of an unknown ID: %v", err)
	}
	if _, err := db.Get(12345); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an unknown ID: %v", err)
	}
}

func TestPriorityAndTies(t *testing.T) {
	for _, th := range []Thresholds{DefaultThresholds(), {}, {V4Local: 24, V4Remote: 24}} {
		db := newDB(t, th)
		k := key(t, "10.0.0.1 10.1.0.1")
		if id := lookupID(db, DirOut, k); id != 0 {
			t.Fatalf("%v: empty database matched %d", th, id)
		}
		broad := mustInsert(t, db, xfrm(t, "dir out src 0.0.0.0/0 dst 0.0.0.0/0 priority 100 action block"))
		net := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.0/24 dst 10.1.0.0/24 priority 50"))
		host := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.1/32 dst 10.1.0.1/32 priority 50"))
		want := func(id ID) {
			t.Helper()
			if got := lookupID(db, DirOut, k); got != id {
				t.Errorf("%v: got %d, want %d", th, got, id)
			}
		}
		// Equal priority: the first inserted wins, whatever its prefix.
		want(net)
		if err := db.Delete(net); err != nil {
			t.Fatal(err)
		}
		want(host)
		better := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.0/8 dst 10.0.0.0/8 priority 49 action allow"))
		want(better)
		for _, id := range []ID{better, host} {
			if err := db.Delete(id); err != nil {
				t.Fatal(err)
			}
		}
		want(broad)
		// The largest priority still matches, hashed or not.
		last := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.0/8 dst 10.0.0.0/8 priority 4294967295"))
		if err := db.Delete(broad); err != nil {
			t.Fatal(err)
		}
		want(last)
		lastHost := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.1/32 dst 10.1.0.1/32 priority 4294967295"))
		want(last)
		if err := db.Delete(last); err != nil {
			t.Fatal(err)
		}
		want(lastHost)
		if err := db.Delete(lastHost); err != nil {
			t.Fatal(err)
		}
		if err := db.Delete(broad); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete: %v", err)
		}
		want(0)
	}
}

// Outbound policies see the source as local, inbound and forward ones the
// destination; ports follow the addresses, ICMP type and code do not.
func TestDirectionsPortsICMP(t *testing.T) {
	db := newDB(t, Thresholds{V4Local: 24, V4Remote: 24, V6Local: 64, V6Remote: 64})
	ids := map[string]ID{}
	for _, s := range []string{
		"dir out src 10.0.0.0/24 dst 10.1.0.0/24 proto tcp sport 1024-65535 dport 443 sa 1",
		"dir in src 10.1.0.0/24 dst 10.0.0.0/24 proto tcp sport 443 dport 1024-65535 sa 2",
		"dir fwd src 10.1.0.0/24 dst 10.0.0.0/16 proto udp dport 53 sa 3",
		"dir out src 10.0.0.0/24 dst 10.1.0.0/24 proto icmp type 8 code 0 sa 4",
		"dir in src 10.1.0.0/24 dst 10.0.0.0/24 proto icmp type 0 code 0 sa 5",
		"dir in src 10.1.0.0/24 dst 10.0.0.0/24 proto icmp type 3 code 0-15 sa 6",
		"dir out src 2001:db8:1::/64 dst 2001:db8:2::/64 proto ipv6-icmp type 128 sa 7",
		"dir out src 2001:db8:1::/48 dst 2001:db8:2::/48 proto sctp dport 9899 sa 8",
		"dir out src 0.0.0.0/0 dst 0.0.0.0/0 priority 1000 action block sa 9",
	} {
		p := xfrm(t, s)
		ids[s] = mustInsert(t, db, p)
	}
	cases := []struct {
		dir Dir
		key string
		sa  uint64 // 0: no policy
	}{
		{DirOut, "10.0.0.5 10.1.0.9 6 40000 443", 1},
		{DirOut, "10.0.0.5 10.1.0.9 6 1000 443", 9},
		{DirOut, "10.0.0.5 10.1.0.9 6 40000 80", 9},
		{DirOut, "10.0.0.5 10.1.0.9 17 40000 443", 9},
		{DirIn, "10.1.0.9 10.0.0.5 6 443 40000", 2},
		{DirIn, "10.1.0.9 10.0.0.5 6 40000 443", 0},
		{DirFwd, "10.1.0.9 10.0.7.5 17 1234 53", 3},
		{DirFwd, "10.1.0.9 10.0.7.5 17 53 1234", 0},
		{DirFwd, "10.0.7.5 10.1.0.9 17 1234 53", 0},
		// ICMP: the type travels in SrcPort and the code in DstPort, and
		// the selector has the type on its local side in either
		// direction.
		{DirOut, "10.0.0.5 10.1.0.9 1 8 0", 4},
		{DirOut, "10.0.0.5 10.1.0.9 1 0 8", 9},
		{DirIn, "10.1.0.9 10.0.0.5 1 0 0", 5},
		{DirIn, "10.1.0.9 10.0.0.5 1 3 13", 6},
		{DirIn, "10.1.0.9 10.0.0.5 1 3 16", 0},
		{DirIn, "10.1.0.9 10.0.0.5 1 8 0", 0},
		{DirOut, "2001:db8:1::1 2001:db8:2::1 58 128 0", 7},
		{DirOut, "2001:db8:1::1 2001:db8:2::1 58 129 0", 0},
		{DirOut, "2001:db8:1:5::1 2001:db8:2:7::1 132 5000 9899", 8},
		{DirOut, "2001:db8:1:5::1 2001:db8:2:7::1 6 5000 9899", 0},
		// A mapped address is IPv6 and matches no IPv4 policy.
		{DirOut, "::ffff:10.0.0.5 ::ffff:10.1.0.9 6 40000 443", 0},
	}
	for _, c := range cases {
		k := key(t, c.key)
		e := db.Lookup(c.dir, &k)
		var sa uint64
		if e != nil {
			sa = e.SA()
		}
		if sa != c.sa {
			t.Errorf("%v %s: got SA %d, want %d", c.dir, c.key, sa, c.sa)
		}
	}
	// Keys no policy can match.
	for _, k := range []Key{
		{},
		{Src: netip.MustParseAddr("10.0.0.5")},
		{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("2001:db8:2::1")},
	} {
		if e := db.Lookup(DirOut, &k); e != nil {
			t.Errorf("%+v matched %v", k, e.Policy())
		}
	}
	if e := db.Lookup(numDirs, &Key{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("10.1.0.9")}); e != nil {
		t.Errorf("an invalid direction matched %v", e.Policy())
	}
}

// What Get and Entry.Policy give back is what was inserted, prefixes
// masked and the full port range written as any.
func TestPolicyRoundTrip(t *testing.T) {
	db := newDB(t, Thresholds{V4Local: 16, V4Remote: 16, V6Local: 48, V6Remote: 48})
	in := []Policy{
		xfrm(t, "dir out src 10.22.3.4/16 dst 10.24.1.0/24 proto tcp sport 1000-2000 dport 443 priority 7 sa 0x77"),
		xfrm(t, "dir in src 10.24.1.1/32 dst 10.0.0.0/8 proto icmp type 3 code 1-4 action allow"),
		xfrm(t, "dir fwd src 3ffe:304:124:2401::2/128 dst 3ffe:304:124:2200::/56 priority 4000000000 action block"),
		xfrm(t, "dir out src ::/0 dst 2001:db8::/32 proto udp sport 0-65535 dport 4500 sa 9 trap"),
	}
	want := []string{
		"out local 10.22.0.0/16 remote 10.24.1.0/24 proto 6 lport 1000-2000 rport 443 prio 7 protect sa 0x77",
		"in local 10.0.0.0/8 remote 10.24.1.1/32 proto 1 lport 3 rport 1-4 prio 0 bypass",
		"fwd local 3ffe:304:124:2200::/56 remote 3ffe:304:124:2401::2/128 prio 4000000000 discard",
		"out local ::/0 remote 2001:db8::/32 proto 17 rport 4500 prio 0 protect sa 0x9 trap",
	}
	for i, p := range in {
		id := mustInsert(t, db, p)
		got, err := db.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != want[i] {
			t.Errorf("policy %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
	ids, err := db.InsertBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if got, _ := db.Get(id); got.String() != want[i] {
			t.Errorf("batch policy %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
	st := db.Stats()
	if st.Policies != [numDirs]int{4, 2, 2} || st.Thresholds != db.Thresholds() {
		t.Errorf("stats %+v", st)
	}
}

// Changing the thresholds moves policies between the table and the lists
// without changing any answer.
func TestSetThresholds(t *testing.T) {
	g := &gen{rng: newRand(t), th: Thresholds{16, 24, 56, 64}}
	db := newDB(t, g.th)
	var ref reference
	for range 500 {
		p := g.policy()
		ref.insert(mustInsert(t, db, p), p)
	}
	keys := make([]struct {
		dir Dir
		k   Key
	}, 2000)
	for i := range keys {
		keys[i].dir, keys[i].k = g.key(ref.ps)
	}
	for _, th := range []Thresholds{{}, DefaultThresholds(), {8, 8, 40, 40}, {32, 0, 0, 128}, {16, 24, 56, 64}} {
		if err := db.SetThresholds(th); err != nil {
			t.Fatal(err)
		}
		hashed := 0
		for _, rp := range ref.ps {
			if isHashed(t, db, rp.id) {
				hashed++
			}
		}
		if st := db.Stats(); st.Hashed != hashed || st.Thresholds != th {
			t.Errorf("%v: stats %+v, %d hashed", th, st, hashed)
		}
		for _, k := range keys {
			if got, want := lookupID(db, k.dir, k.k), ref.lookup(k.dir, k.k); got != want {
				t.Fatalf("%v: %v %+v: got %d, want %d", th, k.dir, k.k, got, want)
			}
		}
	}
}

// The table grows, shrinks and is compacted as policies come and go, and
// answers stay right through each rebuild.
func TestGrowShrinkCompact(t *testing.T) {
	db := newDB(t, Thresholds{V4Local: 24, V4Remote: 24})
	n := 3 * compactMin
	ids := make([]ID, n)
	for i := range ids {
		ids[i] = mustInsert(t, db, pairPolicy(i))
	}
	st := db.Stats()
	if st.Hashed != n || st.Buckets < 2*n || st.Buckets > 4*n {
		t.Fatalf("after %d inserts: %+v", n, st)
	}
	check := func(live func(i int) bool) {
		t.Helper()
		for i := 0; i < n; i += 7 {
			k := pairKey(i, i)
			want := ID(0)
			if live(i) {
				want = ids[i]
			}
			if got := lookupID(db, DirOut, k); got != want {
				t.Fatalf("pair %d: got %d, want %d", i, got, want)
			}
		}
	}
	check(func(int) bool { return true })
	// Delete two thirds: the slab of the last growth is compacted once
	// half of it is dead.
	for i := range ids[:2*n/3] {
		if err := db.Delete(ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	db.mu.Lock()
	built, unlinked := db.built, db.unlinked
	db.mu.Unlock()
	if unlinked > built/2+1 {
		t.Errorf("no compaction: %d of %d unlinked", unlinked, built)
	}
	check(func(i int) bool { return i >= 2*n/3 })
	for i := range ids[2*n/3:] {
		if err := db.Delete(ids[2*n/3+i]); err != nil {
			t.Fatal(err)
		}
	}
	if st := db.Stats(); st.Hashed != 0 || st.Buckets != minBuckets {
		t.Errorf("after deleting everything: %+v", st)
	}
	check(func(int) bool { return false })
}

// A deleted policy's ID names nothing, even once its slot holds another
// policy.
func TestStaleID(t *testing.T) {
	db := newDB(t, DefaultThresholds())
	a := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.1/32 dst 10.1.0.1/32"))
	if err := db.Delete(a); err != nil {
		t.Fatal(err)
	}
	b := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.2/32 dst 10.1.0.2/32"))
	if a == b || a == 0 || b == 0 {
		t.Fatalf("IDs %#x and %#x", a, b)
	}
	for _, id := range []ID{a, 0, b + 1, b + 1<<32} {
		if err := db.Delete(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%#x): %v", id, err)
		}
		if _, err := db.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%#x): %v", id, err)
		}
	}
	if p, err := db.Get(b); err != nil || p.Local.String() != "10.0.0.2/32" {
		t.Errorf("Get(%#x): %v, %v", b, p, err)
	}
	if db.Len() != 1 {
		t.Errorf("Len %d", db.Len())
	}
}

// Policies lists every policy once, in lookup order per direction, and
// says where each is kept; a threshold change moves them.
func TestPoliciesListing(t *testing.T) {
	db := newDB(t, Thresholds{V4Local: 16, V4Remote: 24, V6Local: 56, V6Remote: 64})
	ids := map[string]ID{}
	for _, s := range []string{
		"dir out src 10.22.0.0/20 dst 10.24.1.0/24 priority 5",
		"dir out src 10.22.0.0/16 dst 10.24.0.0/16 priority 5",
		"dir in src 10.24.1.1/32 dst 10.22.0.0/16 priority 9",
		"dir out src 10.0.0.0/8 dst 10.24.1.0/24 priority 1",
		"dir in src 10.24.0.0/16 dst 10.22.0.0/16 priority 2",
	} {
		ids[s] = mustInsert(t, db, xfrm(t, s))
	}
	got := db.Policies()
	if len(got) != len(ids) {
		t.Fatalf("%d policies listed, %d installed", len(got), len(ids))
	}
	var order []ID
	for _, p := range got {
		order = append(order, p.ID)
		if p.Hashed != isHashed(t, db, p.ID) {
			t.Errorf("%v: listed as hashed %v", p.Policy, p.Hashed)
		}
		if want, err := db.Get(p.ID); err != nil || want.String() != p.Policy.String() {
			t.Errorf("policy %d listed as %v, Get says %v (%v)", p.ID, p.Policy, want, err)
		}
	}
	// dir in before dir out (Dir order), and by priority, then insertion,
	// within each.
	want := []ID{
		ids["dir in src 10.24.0.0/16 dst 10.22.0.0/16 priority 2"],
		ids["dir in src 10.24.1.1/32 dst 10.22.0.0/16 priority 9"],
		ids["dir out src 10.0.0.0/8 dst 10.24.1.0/24 priority 1"],
		ids["dir out src 10.22.0.0/20 dst 10.24.1.0/24 priority 5"],
		ids["dir out src 10.22.0.0/16 dst 10.24.0.0/16 priority 5"],
	}
	if DirIn > DirOut {
		want = append(want[2:], want[:2]...)
	}
	if !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if err := db.SetThresholds(Thresholds{V4Local: 0, V4Remote: 0, V6Local: 0, V6Remote: 0}); err != nil {
		t.Fatal(err)
	}
	for _, p := range db.Policies() {
		if !p.Hashed {
			t.Errorf("%v not hashed with thresholds of 0", p.Policy)
		}
	}
}
