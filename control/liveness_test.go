package control

import (
	"testing"
	"time"
)

// TestLiveness: a liveness check the peer answers changes nothing and
// counts as hearing from it; one it does not answer closes the IKE SA and
// its child SAs after the retransmissions, and Dead says why.
func TestLiveness(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
		a.Retransmit = Retransmit{Tries: 2, Timeout: time.Second, Base: 2}
	})
	clock, _ := withClock(p)
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	var spi uint32
	for s := range p.instA.sas {
		spi = s
	}
	heard := p.a.LastHeard(spi)
	if heard.IsZero() {
		t.Fatal("no message heard from the peer after IKE_AUTH")
	}
	clock.Advance(10*time.Second, p.net.settle)
	if err := p.a.CheckLiveness(spi); err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	if got := p.a.LastHeard(spi); !got.After(heard) {
		t.Fatalf("last heard %v, not after %v: the answer did not count", got, heard)
	}
	if sa.State() != "ESTABLISHED" || sa.Dead() {
		t.Fatalf("after an answered check: %s dead=%v", sa.State(), sa.Dead())
	}
	// Now the peer is gone.
	p.net.hook = func(datagram) []datagram { return nil }
	if err := p.a.CheckLiveness(spi); err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	clock.Advance(6*time.Second, p.net.settle)
	if sa.State() != "ESTABLISHED" {
		t.Fatalf("closed before the retransmissions ran out: %s", sa.State())
	}
	clock.Advance(time.Second, p.net.settle)
	if sa.State() != "DELETED" || !sa.Dead() || p.instA.count() != 0 {
		t.Fatalf("after the retransmissions: %s dead=%v, %d SAs", sa.State(), sa.Dead(), p.instA.count())
	}
	if err := p.a.CheckLiveness(spi); err == nil {
		t.Fatal("a liveness check on a closed SA was accepted")
	}
}
