package spd

import (
	"net/netip"
	"testing"
)

var (
	sinkEntry  *Entry
	sinkPolicy Policy
	sinkByte   byte
)

// Lookups and reading what they return allocate nothing, whether the
// answer is hashed, listed or missing, for either family.
func TestLookupAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on synchronization; make test reruns this without -race")
	}
	db := newDB(t, Thresholds{V4Local: 24, V4Remote: 24, V6Local: 64, V6Remote: 64})
	for _, s := range []string{
		"dir out src 10.0.0.0/24 dst 10.1.0.0/24 proto tcp dport 443",
		"dir out src 10.0.0.0/16 dst 10.1.0.0/16 priority 5 action allow",
		"dir in src 2001:db8:2::/64 dst 2001:db8:1::/64 proto ipv6-icmp type 128",
		"dir in src 2001:db8::/32 dst 2001:db8::/32 priority 10 action block",
	} {
		mustInsert(t, db, xfrm(t, s))
	}
	cases := []struct {
		dir Dir
		key string
	}{
		{DirOut, "10.0.0.1 10.1.0.1 6 1234 443"},
		{DirOut, "10.0.9.1 10.1.9.1"},
		{DirOut, "10.9.9.1 10.1.9.1"},
		{DirIn, "2001:db8:2::1 2001:db8:1::1 58 128 0"},
		{DirIn, "2001:db8:2::1 2001:db8:1::1 58 129 0"},
		{DirFwd, "2001:db8:2::1 2001:db8:1::1"},
	}
	for _, c := range cases {
		k := key(t, c.key)
		if n := testing.AllocsPerRun(1000, func() { sinkEntry = db.Lookup(c.dir, &k) }); n != 0 {
			t.Errorf("Lookup(%v, %s): %v allocations", c.dir, c.key, n)
		}
		if e := db.Lookup(c.dir, &k); e != nil {
			if n := testing.AllocsPerRun(100, func() { sinkPolicy = e.Policy() }); n != 0 {
				t.Errorf("Entry.Policy: %v allocations", n)
			}
		}
	}
	keys := make([]Key, 0, 40)
	for i := range cap(keys) {
		keys = append(keys, key(t, cases[i%len(cases)].key))
	}
	out := make([]*Entry, len(keys))
	if n := testing.AllocsPerRun(100, func() { db.LookupBatch(DirOut, keys, out) }); n != 0 {
		t.Errorf("LookupBatch: %v allocations", n)
	}
	// A key with no addresses is refused without allocating too.
	k := Key{Src: netip.MustParseAddr("10.0.0.1")}
	if n := testing.AllocsPerRun(100, func() { sinkEntry = db.Lookup(DirOut, &k) }); n != 0 {
		t.Errorf("Lookup of a bad key: %v allocations", n)
	}
}
