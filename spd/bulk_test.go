package spd

import (
	"testing"
	"time"
)

// A million policies load in one call, in a few seconds, and are then
// looked up, added to and deleted from like any others. Under the race
// detector, which slows this down tenfold, and with -short, a tenth.
func TestInsertBatchMillion(t *testing.T) {
	n := 1_000_000
	if raceEnabled || testing.Short() {
		n = 100_000
	}
	ps := make([]Policy, n)
	for i := range ps {
		ps[i] = pairPolicy(i)
	}
	db := newDB(t, Thresholds{V4Local: 24, V4Remote: 24, V6Local: 64, V6Remote: 64})
	start := time.Now()
	ids, err := db.InsertBatch(ps)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("InsertBatch of %d policies: %v (%.0f policies/s)", n, elapsed, float64(n)/elapsed.Seconds())
	if !raceEnabled && elapsed > 10*time.Second {
		t.Errorf("InsertBatch of %d policies took %v", n, elapsed)
	}
	if st := db.Stats(); st.Hashed != n || st.Policies[DirOut] != n {
		t.Fatalf("stats %+v", st)
	}
	rng := newRand(t)
	for range 10_000 {
		i := rng.IntN(n)
		if got := lookupID(db, DirOut, pairKey(i, rng.IntN(1<<16))); got != ids[i] {
			t.Fatalf("pair %d: got %d, want %d", i, got, ids[i])
		}
	}
	// A better policy over one pair, then gone again.
	i := rng.IntN(n)
	p := pairPolicy(i)
	p.Priority, p.Action = 1, Discard
	id := mustInsert(t, db, p)
	if got := lookupID(db, DirOut, pairKey(i, 7)); got != id {
		t.Fatalf("after insert: got %d, want %d", got, id)
	}
	for _, id := range []ID{id, ids[i]} {
		if err := db.Delete(id); err != nil {
			t.Fatal(err)
		}
	}
	if got := lookupID(db, DirOut, pairKey(i, 7)); got != 0 {
		t.Fatalf("after delete: got %d", got)
	}
}
