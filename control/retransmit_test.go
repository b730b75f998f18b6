package control

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestRetransmitSchedule(t *testing.T) {
	r := DefaultRetransmit
	// strongSwan documents these waits for its defaults (charon.retransmit_*).
	want := []time.Duration{4000, 7200, 12960, 23328, 41990, 75583}
	for i, w := range want {
		got := r.Wait(i, nil).Milliseconds()
		if d := got - int64(w); d < -1 || d > 1 {
			t.Errorf("try %d: %d ms, want %d", i, got, w)
		}
	}
	if tot := r.Total(); tot < 165*time.Second || tot > 166*time.Second {
		t.Errorf("total %v, want about 165 s", tot)
	}
	r.Limit = 10 * time.Second
	if got := r.Wait(4, nil); got != 10*time.Second {
		t.Errorf("limited wait %v", got)
	}
	r.Jitter = 20
	rnd := rand.New(rand.NewPCG(1, 2))
	lo := time.Duration(1 << 62)
	for range 1000 {
		w := r.Wait(0, rnd)
		if w > 4*time.Second || w < 3200*time.Millisecond {
			t.Fatalf("jittered wait %v outside 3.2-4 s", w)
		}
		lo = min(lo, w)
	}
	if lo > 3300*time.Millisecond {
		t.Errorf("jitter never went below %v: not applied?", lo)
	}
	if got := (Retransmit{Tries: 1, Timeout: time.Second, Base: 10}).Wait(40, nil); got <= 0 {
		t.Errorf("huge exponent gave %v", got)
	}
}

func TestRetransmitCheck(t *testing.T) {
	for _, r := range []Retransmit{
		{Tries: -1, Timeout: time.Second, Base: 2},
		{Tries: 1, Timeout: 0, Base: 2},
		{Tries: 1, Timeout: time.Second, Base: 0.5},
		{Tries: 1, Timeout: time.Second, Base: 2, Jitter: 21},
		{Tries: 1, Timeout: time.Second, Base: 2, Limit: -1},
	} {
		if r.Check() == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	if err := DefaultRetransmit.Check(); err != nil {
		t.Fatal(err)
	}
}
