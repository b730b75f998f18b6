package control

import (
	"maps"
	"slices"
	"testing"
)

// TestIKERekeyByUs: we rekey the IKE SA; both ends end up with one IKE SA
// under new SPIs and new keys, holding the same child SAs, and exchanges
// on it work (a child rekey through the new IKE SA).
func TestIKERekeyByUs(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	before := p.a.List()
	children := slices.Sorted(maps.Keys(p.instA.sas))
	if len(before) != 1 {
		t.Fatalf("%d IKE SAs", len(before))
	}
	if err := p.a.RekeyIKE("to-b"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "IKE rekey", func() bool {
		p.net.settle()
		a, b := p.a.List(), p.b.List()
		return len(a) == 1 && len(b) == 1 && a[0].SPIi != before[0].SPIi && a[0].SPIi == b[0].SPIi && a[0].SPIr == b[0].SPIr
	})
	after := p.a.List()[0]
	if after.State != "ESTABLISHED" || !after.Initiator || len(after.Children) != 1 {
		t.Fatalf("after the rekey: %+v", after)
	}
	if got := slices.Sorted(maps.Keys(p.instA.sas)); !slices.Equal(got, children) {
		t.Fatalf("child SAs changed with the IKE SA: %v, were %v", got, children)
	}
	// The new IKE SA's keys work both ways: rekey the child through it.
	var in uint32
	for s, c := range p.instA.sas {
		if c.Inbound {
			in = s
		}
	}
	if err := p.a.RekeyChild(in); err != nil {
		t.Fatal(err)
	}
	eventually(t, "child rekey on the new IKE SA", func() bool {
		p.net.settle()
		return !p.instA.has(in) && p.instA.count() == 2 && p.instB.count() == 2
	})
	checkChildPair(t, p)
	if p.a.Stats.AuthFailed.Load()+p.b.Stats.AuthFailed.Load() != 0 {
		t.Fatal("messages failed to authenticate after the rekey")
	}
}

// TestSimultaneousIKERekey: both ends rekey the IKE SA at once (RFC 7296
// section 2.8.2). One new IKE SA survives at both ends, the same one,
// holding the child SAs; the redundant one and the old one go.
func TestSimultaneousIKERekey(t *testing.T) {
	for round := range 8 { // the nonces decide which side's SA survives
		p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
		sa, _ := p.a.Initiate("to-b")
		if err := waitSA(t, sa); err != nil {
			t.Fatal(err)
		}
		p.net.settle()
		old := p.a.List()[0].SPIi
		children := slices.Sorted(maps.Keys(p.instA.sas))
		p.net.gate.Lock()
		errA, errB := p.a.RekeyIKE("to-b"), p.b.RekeyIKE("to-a")
		p.net.gate.Unlock()
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		eventually(t, "settled", func() bool {
			p.net.settle()
			a, b := p.a.List(), p.b.List()
			return len(a) == 1 && len(b) == 1 && a[0].SPIi != old && a[0].SPIi == b[0].SPIi && a[0].SPIr == b[0].SPIr &&
				len(a[0].Children) == 1 && len(b[0].Children) == 1
		})
		if got := slices.Sorted(maps.Keys(p.instA.sas)); !slices.Equal(got, children) {
			t.Fatalf("round %d: child SAs %v, were %v", round, got, children)
		}
		if p.a.Stats.IKERekeyCollisions.Load() != 1 || p.b.Stats.IKERekeyCollisions.Load() != 1 {
			t.Fatalf("round %d: collisions seen %d and %d, want 1 and 1: the requests did not cross",
				round, p.a.Stats.IKERekeyCollisions.Load(), p.b.Stats.IKERekeyCollisions.Load())
		}
		// The survivor works: a child rekey through it.
		var in uint32
		for s, c := range p.instA.sas {
			if c.Inbound {
				in = s
			}
		}
		if err := p.a.RekeyChild(in); err != nil {
			t.Fatal(err)
		}
		eventually(t, "child rekey on the survivor", func() bool {
			p.net.settle()
			return !p.instA.has(in) && p.instA.count() == 2 && p.instB.count() == 2
		})
		checkChildPair(t, p)
		t.Logf("round %d: survivor %016x", round, p.a.List()[0].SPIi)
	}
}
