package control

import (
	"sync"
	"testing"
	"time"
)

// TestNATKeepalive: the end behind a NAT sends a 0xFF datagram to the
// peer's port 4500 every interval while the IKE SA stands, the other end
// none, and they stop with the IKE SA.
func TestNATKeepalive(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
		a.ForceEncap = true // as behind a NAT
		a.Keepalive = 10 * time.Second
	})
	clock, _ := withClock(p)
	var mu sync.Mutex
	var keepalives []datagram
	p.net.onSend = func(d datagram) {
		if len(d.b) == 1 && d.b[0] == 0xff {
			mu.Lock()
			keepalives = append(keepalives, d)
			mu.Unlock()
		}
	}
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	clock.Advance(25*time.Second, p.net.settle)
	mu.Lock()
	n := len(keepalives)
	var first datagram
	if n > 0 {
		first = keepalives[0]
	}
	mu.Unlock()
	if n != 2 || first.from.Port() != PortNATT || first.to.Port() != PortNATT || first.from.Addr() != gwA.Addr() {
		t.Fatalf("%d keepalives in 25 s at a 10 s interval, first %v -> %v; want 2, from A:4500 to B:4500", n, first.from, first.to)
	}
	if p.b.Stats.Keepalives.Load() != 0 {
		t.Fatal("the end not behind a NAT sent keepalives")
	}
	sa.Delete()
	p.net.settle()
	clock.Advance(30*time.Second, p.net.settle)
	if got := p.a.Stats.Keepalives.Load(); got != 2 {
		t.Fatalf("%d keepalives sent, want them to stop with the IKE SA at 2", got)
	}
}
