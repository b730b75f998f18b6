package control

import (
	"testing"
	"time"
)

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; ; i++ {
		if cond() {
			return
		}
		if i == 500 {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fakeInstaller) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sas)
}

func (f *fakeInstaller) has(spi uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sas[spi]
	return ok
}

// TestChildRekeyAndDelete: either side rekeys the child SA (with PFS),
// the old one goes on both sides, the new pair works; then a child delete
// and an IKE delete each clean up both ends.
func TestChildRekeyAndDelete(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16-x25519", "aes128gcm16-x25519", nil)
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	for round, d := range []*Daemon{p.a, p.b} {
		inst := p.instA
		if d == p.b {
			inst = p.instB
		}
		var old uint32
		for spi, c := range inst.sas {
			if c.Inbound {
				old = spi
			}
		}
		if err := d.RekeyChild(old); err != nil {
			t.Fatal(err)
		}
		eventually(t, "rekey", func() bool {
			return !inst.has(old) && p.instA.count() == 2 && p.instB.count() == 2
		})
		checkChildPair(t, p)
		t.Logf("round %d: rekeyed %08x", round, old)
	}
	var spi uint32
	for s := range p.instA.sas {
		spi = s
	}
	if err := p.a.DeleteChild(spi); err != nil {
		t.Fatal(err)
	}
	eventually(t, "child delete", func() bool { return p.instA.count() == 0 && p.instB.count() == 0 })
	if err := p.a.DeleteChild(spi); err == nil {
		t.Error("deleting a deleted child SA succeeded")
	}
	// The IKE SA, childless now, makes a new child SA with the
	// configured selectors, with each side's keys matching the other's.
	if err := p.a.CreateChild("to-b"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new child", func() bool { return p.instA.count() == 2 && p.instB.count() == 2 })
	checkChildPair(t, p)
	if err := p.a.CreateChild("nobody"); err == nil {
		t.Error("CreateChild of an unknown connection succeeded")
	}
	p.respSA(t).Delete()
	eventually(t, "IKE delete", func() bool { return p.a.sas.len() == 0 && p.b.sas.len() == 0 })
}

// TestDeadPeer: an established IKE SA whose peer stops answering is closed
// with its child SAs after the retransmissions.
func TestDeadPeer(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
		a.Retransmit = Retransmit{Tries: 2, Timeout: time.Second, Base: 2}
	})
	clock, _ := withClock(p)
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	p.net.hook = func(datagram) []datagram { return nil }
	var spi uint32
	for s := range p.instA.sas {
		spi = s
	}
	p.a.RekeyChild(spi)
	p.net.settle()
	clock.Advance(6*time.Second, p.net.settle)
	if sa.State() != "ESTABLISHED" || p.instA.count() != 2 {
		t.Fatalf("closed early: %s, %d SAs", sa.State(), p.instA.count())
	}
	clock.Advance(time.Second, p.net.settle)
	if sa.State() != "DELETED" || p.instA.count() != 0 {
		t.Fatalf("after the retransmissions: %s, %d SAs", sa.State(), p.instA.count())
	}
}

// TestSimultaneousChildRekey: both ends rekey the same child SA at once
// (RFC 7296 section 2.8.1). Each answers the other's request, the redundant
// new SA is deleted by the end that made it, and the old one goes: one
// working pair remains on each side.
func TestSimultaneousChildRekey(t *testing.T) {
	for round := range 8 { // the nonces decide which side deletes
		p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
		sa, _ := p.a.Initiate("to-b")
		if err := waitSA(t, sa); err != nil {
			t.Fatal(err)
		}
		p.net.settle()
		var spi uint32
		for s, c := range p.instA.sas {
			if c.Inbound {
				spi = s
			}
		}
		// Hold the network while both start, so that the requests cross.
		p.net.gate.Lock()
		errA, errB := p.a.RekeyChild(spi), p.b.RekeyChild(spi)
		p.net.gate.Unlock()
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		eventually(t, "settled", func() bool {
			p.net.settle()
			return p.instA.count() == 2 && p.instB.count() == 2 && !p.instA.has(spi)
		})
		checkChildPair(t, p)
		t.Logf("round %d ok", round)
	}
}
