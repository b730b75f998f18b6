package control

import (
	"sync/atomic"
	"testing"
)

// TestOnPeerClose: the peer closing the tunnel (deleting the last child
// SA, or the IKE SA with its children) is reported; the peer finishing a
// rekey, which deletes the old child SA and keeps the new one, is not.
func TestOnPeerClose(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	var closes atomic.Int32
	p.a.OnPeerClose(func(name string) {
		if name == "to-b" {
			closes.Add(1)
		}
	})
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	childOfB := func() uint32 {
		for s, c := range p.instB.sas {
			if c.Inbound {
				return s
			}
		}
		return 0
	}
	old := childOfB()
	if err := p.b.RekeyChild(old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rekey by the peer", func() bool {
		p.net.settle()
		return !p.instB.has(old) && p.instA.count() == 2 && p.instB.count() == 2
	})
	if n := closes.Load(); n != 0 {
		t.Fatalf("a rekey by the peer reported as %d closes", n)
	}
	if err := p.b.DeleteChild(childOfB()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "child delete by the peer", func() bool { p.net.settle(); return p.instA.count() == 0 })
	if n := closes.Load(); n != 1 {
		t.Fatalf("%d closes reported after the peer deleted the child SA, want 1", n)
	}
}
