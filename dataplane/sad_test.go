package dataplane

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The lock-free table agrees with a map under random puts and deletes,
// through rebuilds and tombstones, while readers run.
func TestTableMatchesMap(t *testing.T) {
	var tb table[int]
	ref := map[uint64]*int{}
	rng := rand.New(rand.NewPCG(1, 2))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				// Values are never changed for a key in this test except by
				// delete, so a reader sees nil or a value keyed k.
				for k := uint64(0); k < 300; k++ {
					if v := tb.get(k); v != nil && uint64(*v) != k {
						t.Errorf("key %d: value %d", k, *v)
						return
					}
				}
			}
		}()
	}
	for i := range 20000 {
		k := uint64(rng.IntN(300))
		tb.mu.Lock()
		if rng.IntN(3) == 0 {
			got := tb.del(k)
			if (got == nil) != (ref[k] == nil) {
				t.Fatalf("step %d: del %d returned %v, map has %v", i, k, got, ref[k])
			}
			delete(ref, k)
		} else {
			v := int(k)
			tb.put(k, &v)
			ref[k] = &v
		}
		if tb.n != len(ref) {
			t.Fatalf("step %d: %d entries, map has %d", i, tb.n, len(ref))
		}
		tb.mu.Unlock()
		if i%1000 == 0 {
			for k := uint64(0); k < 300; k++ {
				if (tb.get(k) == nil) != (ref[k] == nil) {
					t.Fatalf("step %d: key %d present %v, map %v", i, k, tb.get(k) != nil, ref[k] != nil)
				}
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestInstaller(t *testing.T) {
	dp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var ins Installer = dp
	spi, err := ins.AllocSPI()
	if err != nil || spi < 256 {
		t.Fatalf("AllocSPI: %#x, %v", spi, err)
	}
	in := SA{SAConfig: SAConfig{SPI: spi, ReqID: 7, Transform: gcm128(1), Src: gw4b, Dst: gw4a, ReplayWindow: 4096}, Inbound: true}
	if err := ins.AddSA(in); err != nil {
		t.Fatal(err)
	}
	if err := ins.AddSA(in); !errors.Is(err, ErrSAExists) {
		t.Fatalf("second AddSA: %v", err)
	}
	if dp.sad.in.get(uint64(spi)) == nil {
		t.Fatal("inbound SA not visible to workers")
	}
	// Outbound: the newest SA of a reqid carries the traffic, and deleting
	// it falls back to the one before (make-before-break rekey).
	old := SA{SAConfig: SAConfig{SPI: 0x5001, ReqID: 7, Transform: gcm128(2), Src: gw4a, Dst: gw4b}}
	rekeyed := SA{SAConfig: SAConfig{SPI: 0x5002, ReqID: 7, Transform: gcm128(3), Src: gw4a, Dst: gw4b}}
	for _, sa := range []SA{old, rekeyed} {
		if err := ins.AddSA(sa); err != nil {
			t.Fatal(err)
		}
	}
	if got := dp.sad.out.get(7); got == nil || got.SPI() != 0x5002 {
		t.Fatalf("reqid 7 goes to %v, want the rekeyed SA", got)
	}
	if err := ins.DeleteSA(0x5002, false); err != nil {
		t.Fatal(err)
	}
	if got := dp.sad.out.get(7); got == nil || got.SPI() != 0x5001 {
		t.Fatalf("after delete reqid 7 goes to %v, want the old SA", got)
	}
	// Update keeps counters and, with the same keys, sequence numbers.
	out := dp.sad.out.get(7)
	out.reserve(41)
	out.Stats.touch(41, 4100, 5)
	moved := old
	moved.Encap, moved.DstPort = true, 4501
	if err := ins.UpdateSA(moved); err != nil {
		t.Fatal(err)
	}
	info, err := ins.QuerySA(0x5001, false)
	if err != nil || info.Packets != 41 || info.Bytes != 4100 || info.Seq != 41 || !info.Encap || info.LastUse != time.Unix(0, 5) {
		t.Fatalf("query after update: %+v %v", info, err)
	}
	if err := ins.UpdateSA(SA{SAConfig: SAConfig{SPI: 0x7777, Transform: gcm128(1), Src: gw4a, Dst: gw4b}}); !errors.Is(err, ErrNoSA) {
		t.Fatalf("update of a missing SA: %v", err)
	}
	if err := ins.DeleteSA(0x5001, false); err != nil {
		t.Fatal(err)
	}
	if dp.sad.out.get(7) != nil {
		t.Fatal("reqid 7 still has an SA")
	}
	if err := ins.DeleteSA(spi, true); err != nil {
		t.Fatal(err)
	}
	if _, err := ins.QuerySA(spi, true); !errors.Is(err, ErrNoSA) {
		t.Fatalf("query of a deleted SA: %v", err)
	}
	// A bad SA is refused whole.
	if err := ins.AddSA(SA{SAConfig: SAConfig{SPI: 3, Transform: gcm128(1), Src: gw4a, Dst: gw4b}}); err == nil {
		t.Fatal("reserved SPI accepted")
	}
}

func TestLifetimes(t *testing.T) {
	dp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(5000, 0)
	dp.now = func() time.Time { return now }
	add := func(spi uint32, l Lifetime) {
		t.Helper()
		if err := dp.AddSA(SA{SAConfig: SAConfig{SPI: spi, ReqID: uint64(spi), Transform: gcm128(1), Src: gw4a, Dst: gw4b}, Lifetime: l}); err != nil {
			t.Fatal(err)
		}
	}
	add(0x100, Lifetime{SoftAdd: time.Minute, HardAdd: 2 * time.Minute})
	add(0x101, Lifetime{SoftBytes: 1000, HardBytes: 2000})
	add(0x102, Lifetime{SoftPackets: 10, HardPackets: 20})
	events := func() (out []Event) {
		for len(dp.Events()) > 0 {
			out = append(out, <-dp.Events())
		}
		return out
	}
	dp.expire(now)
	if ev := events(); len(ev) != 0 {
		t.Fatalf("early events %+v", ev)
	}
	dp.sad.out.get(0x101).Stats.touch(1, 1500, 0)
	dp.sad.out.get(0x102).Stats.touch(25, 100, 0)
	now = now.Add(61 * time.Second)
	dp.expire(now)
	dp.expire(now) // soft limits report once
	ev := events()
	want := map[uint32]EventKind{0x100: EventSoftExpire, 0x101: EventSoftExpire, 0x102: EventHardExpire}
	if len(ev) != 3 {
		t.Fatalf("events %+v", ev)
	}
	for _, e := range ev {
		if want[e.SPI] != e.Kind {
			t.Fatalf("spi %#x: %v, want %v", e.SPI, e.Kind, want[e.SPI])
		}
	}
	if _, err := dp.QuerySA(0x102, false); !errors.Is(err, ErrNoSA) {
		t.Fatal("hard-expired SA still installed")
	}
	now = now.Add(time.Minute)
	dp.expire(now)
	if ev := events(); len(ev) != 1 || ev[0].SPI != 0x100 || ev[0].Kind != EventHardExpire || ev[0].Reason != "time" {
		t.Fatalf("events %+v, want the hard time expiry of 0x100", ev)
	}
}

// An SA with an idle time reports once when it has carried nothing for
// that long, counting from its installation, again only after carrying
// packets and going idle anew, and never once deleted.
func TestIdleEvents(t *testing.T) {
	dp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(5000, 0)
	dp.now = func() time.Time { return now }
	for _, sa := range []SA{
		{SAConfig: SAConfig{SPI: 0x200, ReqID: 7, Transform: gcm128(1), Src: gw4a, Dst: gw4b}, Lifetime: Lifetime{Idle: time.Minute}},
		{SAConfig: SAConfig{SPI: 0x201, ReqID: 7, Transform: gcm128(2), Src: gw4b, Dst: gw4a}, Inbound: true, Lifetime: Lifetime{Idle: time.Minute, HardAdd: 5 * time.Minute}},
		{SAConfig: SAConfig{SPI: 0x202, ReqID: 8, Transform: gcm128(3), Src: gw4a, Dst: gw4b}}, // no idle time
	} {
		if err := dp.AddSA(sa); err != nil {
			t.Fatal(err)
		}
	}
	events := func() (out []Event) {
		for len(dp.Events()) > 0 {
			out = append(out, <-dp.Events())
		}
		return out
	}
	step := func(d time.Duration) []Event {
		now = now.Add(d)
		dp.expire(now)
		dp.expire(now)
		return events()
	}
	if ev := step(59 * time.Second); len(ev) != 0 {
		t.Fatalf("idle early: %+v", ev)
	}
	// The inbound SA carried a packet at 5030 s (the worker's clock).
	used := time.Unix(5030, 0)
	dp.sad.in.get(0x201).Stats.touch(1, 100, used.UnixNano())
	ev := step(time.Second)
	if len(ev) != 1 || ev[0].Kind != EventIdle || ev[0].SPI != 0x200 || ev[0].Inbound || ev[0].ReqID != 7 || !ev[0].LastUse.IsZero() || ev[0].Reason != "idle" {
		t.Fatalf("at 60 s: %+v, want the never-used outbound SA idle", ev)
	}
	ev = step(30 * time.Second)
	if len(ev) != 1 || ev[0].SPI != 0x201 || !ev[0].Inbound || !ev[0].LastUse.Equal(used) {
		t.Fatalf("at 90 s: %+v, want the inbound SA idle since 30 s", ev)
	}
	if ev := step(time.Minute); len(ev) != 0 {
		t.Fatalf("reported twice: %+v", ev)
	}
	// Used again, idle again: reported again.
	dp.sad.out.get(7).Stats.touch(1, 100, now.UnixNano())
	if ev := step(59 * time.Second); len(ev) != 0 {
		t.Fatalf("idle early after use: %+v", ev)
	}
	if ev := step(time.Second); len(ev) != 1 || ev[0].SPI != 0x200 || !ev[0].LastUse.Equal(now.Add(-time.Minute)) {
		t.Fatalf("after use and a minute: %+v", ev)
	}
	// At its hard limit an SA is deleted and reported as expired, not idle.
	dp.sad.in.get(0x201).Stats.touch(1, 100, now.UnixNano())
	ev = step(3 * time.Minute)
	if len(ev) != 1 || ev[0].Kind != EventHardExpire || ev[0].SPI != 0x201 {
		t.Fatalf("at the hard limit: %+v", ev)
	}
	if ev := step(10 * time.Minute); len(ev) != 0 {
		t.Fatalf("after everything: %+v", ev)
	}
}
