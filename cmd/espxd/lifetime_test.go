package main

import (
	"testing"
	"time"
)

// The inbound and outbound SA of a child SA share one jittered soft
// lifetime (the inbound one a second later), while child SAs differ.
func TestChildLifetimeJitterShared(t *testing.T) {
	conn := &connection{reqid: 3, rekey: time.Hour, life: 66 * time.Minute, rand: 6 * time.Minute}
	in := &ikeInstaller{}
	seen := map[time.Duration]bool{}
	for range 50 {
		li := in.lifetime(conn, true)
		lo := in.lifetime(conn, false)
		if li.SoftAdd != lo.SoftAdd+time.Second {
			t.Fatalf("inbound soft %v, outbound %v: want the outbound's plus 1 s", li.SoftAdd, lo.SoftAdd)
		}
		if lo.SoftAdd > time.Hour || lo.SoftAdd < 54*time.Minute || lo.HardAdd != 66*time.Minute || li.HardAdd != lo.HardAdd {
			t.Fatalf("lifetimes %+v / %+v out of the configured bounds", li, lo)
		}
		seen[lo.SoftAdd] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 child SAs drew only %d soft lifetimes", len(seen))
	}
	// An outbound SA alone (no inbound drawn before it) draws its own.
	if l := in.lifetime(conn, false); l.SoftAdd < 54*time.Minute || l.SoftAdd > time.Hour {
		t.Errorf("lone outbound lifetime %v", l.SoftAdd)
	}
}
