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
