package spd

import (
	"errors"
	"fmt"
	"testing"
)

// TestLookupMatchesReference is the specification test: after every change
// (inserts, bulk inserts, deletes, new thresholds, and the growth,
// shrinking and compaction they set off), Lookup and LookupBatch give
// exactly what a scan of all policies in (priority, insertion) order
// gives, for random thresholds, overlapping random policies and keys that
// mostly fall inside them.
func TestLookupMatchesReference(t *testing.T) {
	rng := newRand(t)
	rounds, ops := 80, 400
	if raceEnabled || testing.Short() {
		rounds = 30
	}
	for round := range rounds {
		g := &gen{rng: rng}
		g.th = g.thresholds()
		db := newDB(t, g.th)
		var ref reference
		var batch [numDirs][]Key
		out := make([]*Entry, 1000)
		check := func(n int, after string) {
			t.Helper()
			for dir := range batch {
				batch[dir] = batch[dir][:0]
			}
			for range n {
				dir, k := g.key(ref.ps)
				got, want := lookupID(db, dir, k), ref.lookup(dir, k)
				if got != want {
					t.Fatalf("round %d, after %s, %v: %v %+v: got %s, want %s", round, after,
						db.Thresholds(), dir, k, describe(db, got), describe(db, want))
				}
				batch[dir] = append(batch[dir], k)
			}
			// The same keys again, in one batch per direction.
			for dir, keys := range batch {
				if got := db.LookupBatch(Dir(dir), keys, out); got != len(keys) {
					t.Fatalf("LookupBatch of %d keys: %d", len(keys), got)
				}
				for i, k := range keys {
					var got ID
					if out[i] != nil {
						got = out[i].ID()
					}
					if want := ref.lookup(Dir(dir), k); got != want {
						t.Fatalf("round %d, after %s, %v: LookupBatch %v %+v: got %s, want %s", round, after,
							db.Thresholds(), Dir(dir), k, describe(db, got), describe(db, want))
					}
				}
			}
		}
		for range ops {
			var after string
			switch r := rng.IntN(100); {
			case r < 60:
				p := g.policy()
				ref.insert(mustInsert(t, db, p), p)
				after = "insert"
			case r < 85:
				if len(ref.ps) == 0 {
					continue
				}
				id := ref.ps[rng.IntN(len(ref.ps))].id
				if err := db.Delete(id); err != nil {
					t.Fatal(err)
				}
				ref.delete(id)
				if err := db.Delete(id); !errors.Is(err, ErrNotFound) {
					t.Fatalf("second delete of %d: %v", id, err)
				}
				after = "delete"
			case r < 92:
				g.th = g.thresholds()
				if err := db.SetThresholds(g.th); err != nil {
					t.Fatal(err)
				}
				after = "set thresholds"
			default:
				ps := make([]Policy, rng.IntN(20))
				for i := range ps {
					ps[i] = g.policy()
				}
				ids, err := db.InsertBatch(ps)
				if err != nil {
					t.Fatal(err)
				}
				for i, id := range ids {
					ref.insert(id, ps[i])
				}
				after = fmt.Sprintf("batch of %d", len(ps))
			}
			check(8, after)
		}
		check(1000, "all")
		if db.Len() != len(ref.ps) {
			t.Fatalf("round %d: %d policies, want %d", round, db.Len(), len(ref.ps))
		}
	}
}

func describe(db *DB, id ID) string {
	if id == 0 {
		return "none"
	}
	p, err := db.Get(id)
	if err != nil {
		return fmt.Sprintf("%#x (%v)", id, err)
	}
	return fmt.Sprintf("%#x (%v)", id, p)
}
