package spd

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// LookupBatch answers as Lookup does over several chunks, with keys that no
// policy can match (no addresses, two families) among the others, with
// chains of several entries, and with out shorter or longer than keys.
func TestLookupBatchAsLookup(t *testing.T) {
	// Thresholds of 8 put many policies in each bucket, so that lookups
	// walk chains; the /16 policies stay in the list.
	db := newDB(t, Thresholds{V4Local: 8, V4Remote: 8, V6Local: 32, V6Remote: 32})
	for i := range 300 {
		p := pairPolicy(i)
		p.Priority = uint32(i % 7)
		mustInsert(t, db, p)
	}
	mustInsert(t, db, xfrm(t, "dir out src 10.0.0.0/16 dst 172.16.0.0/16 priority 3 action allow"))
	mustInsert(t, db, xfrm(t, "dir out src 2001:db8::/32 dst 2001:db8::/32"))
	rng := rand.New(rand.NewPCG(5, 6))
	keys := make([]Key, 3*lookupChunk+5)
	for i := range keys {
		switch rng.IntN(6) {
		case 0:
			keys[i] = Key{}
		case 1:
			keys[i] = Key{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("2001:db8::1")}
		case 2:
			keys[i] = key(t, "2001:db8::1 2001:db8::2")
		default:
			keys[i] = pairKey(rng.IntN(400), rng.IntN(1000))
		}
	}
	for _, n := range []int{len(keys), lookupChunk, 1, 0} {
		out := make([]*Entry, n)
		if got := db.LookupBatch(DirOut, keys, out); got != n {
			t.Fatalf("LookupBatch into %d: %d", n, got)
		}
		for i := range n {
			if want := db.Lookup(DirOut, &keys[i]); out[i] != want {
				t.Fatalf("key %d %+v: LookupBatch %v, Lookup %v", i, keys[i], out[i], want)
			}
		}
	}
	out := make([]*Entry, len(keys)+10)
	if got := db.LookupBatch(DirOut, keys, out); got != len(keys) {
		t.Fatalf("LookupBatch of %d keys into %d: %d", len(keys), len(out), got)
	}
}

// LookupBatchStats counts each answer where it was found, and each scan of
// the list with the entries it compared.
func TestLookupBatchStats(t *testing.T) {
	db := newDB(t, Thresholds{V4Local: 16, V4Remote: 16, V6Local: 64, V6Remote: 64})
	var first ID
	for i := range 200 {
		id := mustInsert(t, db, pairPolicy(i)) // /24 to /24, priority 100: hashed
		if i == 0 {
			first = id
		}
	}
	// Listed: one before every hashed policy that no packet here matches,
	// one after them that every packet matches.
	never := mustInsert(t, db, xfrm(t, "dir out src 192.0.2.0/24 dst 0.0.0.0/0 priority 50 action block"))
	catchAll := mustInsert(t, db, xfrm(t, "dir out src 0.0.0.0/0 dst 0.0.0.0/0 priority 200 action allow"))
	if isHashed(t, db, never) || isHashed(t, db, catchAll) || !isHashed(t, db, first) {
		t.Fatal("policies not where the test means them to be")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	keys := make([]Key, 2*lookupChunk+9)
	var want LookupStats
	for i := range keys {
		switch rng.IntN(4) {
		case 0: // no addresses: no lookup at all
			keys[i] = Key{}
		case 1: // no hashed policy: both listed compared, the second answers
			keys[i] = pairKey(300+rng.IntN(50), rng.IntN(1000))
			want.Listed++
			want.ListScans++
			want.ListEntries += 2
		default: // a hashed policy answers after the first listed one
			keys[i] = pairKey(rng.IntN(200), rng.IntN(1000))
			want.Hashed++
			want.ListScans++
			want.ListEntries++
		}
	}
	out := make([]*Entry, len(keys))
	var got LookupStats
	db.LookupBatchStats(DirOut, keys, out, &got)
	if got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	for i := range keys {
		if e := db.Lookup(DirOut, &keys[i]); out[i] != e {
			t.Fatalf("key %d: LookupBatchStats %v, Lookup %v", i, out[i], e)
		}
	}
	// Counts add up over calls; nil counts nothing and answers the same.
	db.LookupBatchStats(DirOut, keys, out, &got)
	if got.Hashed != 2*want.Hashed || got.ListEntries != 2*want.ListEntries {
		t.Errorf("stats after two calls %+v, want twice %+v", got, want)
	}
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, func() { db.LookupBatchStats(DirOut, keys, out, &got) }); n != 0 {
		t.Errorf("LookupBatchStats: %v allocations", n)
	}
}
