package spd

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentLookups runs readers against a writer that keeps changing
// the database in every way it can, and checks each answer against what
// the changes allow:
//
//   - key A: the writer replaces its policy make-before-break, moving it
//     between the table and a list each time (insert the new one, then
//     delete the old). The catch-all discard behind it must never show:
//     that would be a lookup that saw the delete but not the insert.
//   - key B: each new policy beats the one before, which is then deleted.
//     A reader must never see an older one after a newer one.
//   - key C: a better policy comes and goes; the answer is one of the two.
//
// Meanwhile the thresholds change (which rebuilds everything and moves
// the policies between table and lists) and unrelated policies are bulk
// inserted and deleted one by one (growth, shrinking, compaction).
func TestConcurrentLookups(t *testing.T) {
	db := newDB(t, Thresholds{V4Local: 24, V4Remote: 24, V6Local: 64, V6Remote: 64})
	mustInsert(t, db, xfrm(t, "dir out src 0.0.0.0/0 dst 0.0.0.0/0 priority 4000000000 action block"))
	mustInsert(t, db, xfrm(t, "dir out src ::/0 dst ::/0 priority 4000000000 action block"))

	kA := key(t, "10.0.0.5 10.1.0.7 6 40000 443")
	hashedA := xfrm(t, "dir out src 10.0.0.0/24 dst 10.1.0.0/24 priority 10 sa 1")
	listedA := xfrm(t, "dir out src 10.0.0.0/16 dst 10.1.0.0/24 priority 10 sa 2")
	idA := mustInsert(t, db, hashedA)

	kB := key(t, "2001:db8:1:1::5 2001:db8:2:1::7 17 500 500")
	policyB := func(i int) Policy {
		local := "2001:db8:1:1::/64" // hashed
		if i%2 == 1 {
			local = "2001:db8:1::/48" // listed
		}
		return xfrm(t, fmt.Sprintf("dir out src %s dst 2001:db8:2:1::/64 priority %d sa %d", local, 1_000_000-i, i))
	}
	idB := mustInsert(t, db, policyB(0))

	kC := key(t, "10.0.2.5 10.1.2.7")
	mustInsert(t, db, xfrm(t, "dir out src 10.0.2.0/24 dst 10.1.2.0/24 priority 50 sa 100"))
	betterC := xfrm(t, "dir out src 10.0.2.5/32 dst 10.1.0.0/16 priority 40 sa 101")

	iters := 20000
	if raceEnabled {
		iters = 6000
	}
	var stop atomic.Bool
	var lookups atomic.Int64
	var failed atomic.Value
	fail := func(format string, args ...any) {
		failed.CompareAndSwap(nil, fmt.Sprintf(format, args...))
		stop.Store(true)
	}
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Go(func() {
			var lastB uint64
			n := int64(0)
			// The third reader uses LookupBatch, with each key twice.
			keys := []Key{kA, kB, kC, kA, kB, kC}
			out := make([]*Entry, len(keys))
			lookup := func(j int) *Entry { return db.Lookup(DirOut, &keys[j]) }
			if r == 2 {
				lookup = func(j int) *Entry {
					if j == 0 {
						db.LookupBatch(DirOut, keys, out)
					}
					return out[j]
				}
			}
			for !stop.Load() {
				n++
				for j := range keys {
					e := lookup(j)
					switch j % 3 {
					case 0:
						if e == nil || e.Action() != Protect || e.SA() != 1 && e.SA() != 2 {
							fail("key A: got %v", entryString(e))
						}
					case 1:
						if e == nil || e.Action() != Protect {
							fail("key B: got %v", entryString(e))
						} else if e.SA() < lastB {
							fail("key B: SA %d after SA %d", e.SA(), lastB)
						} else {
							lastB = e.SA()
						}
					case 2:
						if e == nil || e.SA() != 100 && e.SA() != 101 {
							fail("key C: got %v", entryString(e))
						}
					}
				}
			}
			lookups.Add(n)
		})
	}

	ths := []Thresholds{{24, 24, 64, 64}, {16, 16, 48, 48}, DefaultThresholds(), {}, {8, 32, 0, 128}}
	var unrelated []ID
	for i := 1; i <= iters && !stop.Load(); i++ {
		// A: make before break, between table and list.
		next := hashedA
		if i%2 == 1 {
			next = listedA
		}
		id := mustInsert(t, db, next)
		if err := db.Delete(idA); err != nil {
			t.Fatal(err)
		}
		idA = id
		// B: a better policy, then the old one goes.
		id = mustInsert(t, db, policyB(i))
		if err := db.Delete(idB); err != nil {
			t.Fatal(err)
		}
		idB = id
		// C: comes and goes.
		id = mustInsert(t, db, betterC)
		if err := db.Delete(id); err != nil {
			t.Fatal(err)
		}
		switch {
		case i%97 == 0:
			if err := db.SetThresholds(ths[(i/97)%len(ths)]); err != nil {
				t.Fatal(err)
			}
		case i%211 == 0:
			ps := make([]Policy, 500)
			for j := range ps {
				ps[j] = pairPolicy(1000 + len(unrelated) + j)
			}
			ids, err := db.InsertBatch(ps)
			if err != nil {
				t.Fatal(err)
			}
			unrelated = append(unrelated, ids...)
		case len(unrelated) > 0:
			for range min(len(unrelated), 20) {
				if err := db.Delete(unrelated[len(unrelated)-1]); err != nil {
					t.Fatal(err)
				}
				unrelated = unrelated[:len(unrelated)-1]
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatal(msg)
	}
	t.Logf("%d writer iterations, %d lookups of each key", iters, lookups.Load())
	if lookups.Load() == 0 {
		t.Error("no lookups ran")
	}
}

func entryString(e *Entry) string {
	if e == nil {
		return "no policy"
	}
	return e.Policy().String()
}

// The interleaving that DB.ver is for, played step by step: a reader looks
// at the bucket, the writer moves a policy from a list into the table
// (insert the new, delete the old), then the reader looks at the list. The
// two halves of that read find neither policy and fall through to the
// catch-all. Lookup sees that ver moved and reads again.
func TestTornReadIsRetried(t *testing.T) {
	db := newDB(t, Thresholds{V4Local: 24, V4Remote: 24})
	fallback := mustInsert(t, db, xfrm(t, "dir out src 0.0.0.0/0 dst 0.0.0.0/0 priority 1000 action block"))
	listed := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.0/16 dst 10.1.0.0/24 priority 10 sa 2"))
	k := key(t, "10.0.0.5 10.1.0.7")
	var q query
	q.set(DirOut, &k)

	v := db.ver.Load()
	s := db.cur.Load()
	fromBucket := firstMatch(s.buckets[s.bucketOfQuery(&q)].Load(), &q)

	hashed := mustInsert(t, db, xfrm(t, "dir out src 10.0.0.0/24 dst 10.1.0.0/24 priority 10 sa 1"))
	if err := db.Delete(listed); err != nil {
		t.Fatal(err)
	}

	if torn, _ := s.listedBest(&q, fromBucket); torn == nil || torn.ID() != fallback {
		t.Fatalf("the torn read found %v, not the catch-all: the test no longer shows the race", entryString(torn))
	}
	if db.ver.Load() == v {
		t.Fatal("two changes published without moving ver")
	}
	if got := lookupID(db, DirOut, k); got != hashed {
		t.Errorf("Lookup: got %s, want %s", describe(db, got), describe(db, hashed))
	}
}
