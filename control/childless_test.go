package control

import "testing"

// TestChildless: an IKE SA without a child SA (RFC 6023) when the
// initiator asks for one; its child SA follows with CREATE_CHILD_SA.
func TestChildless(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
		a.Childless = true
	})
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	if p.instA.count() != 0 || p.instB.count() != 0 {
		t.Fatalf("child SAs installed: %d at A, %d at B", p.instA.count(), p.instB.count())
	}
	la, lb := p.a.List(), p.b.List()
	if len(la) != 1 || len(lb) != 1 || la[0].State != "ESTABLISHED" || lb[0].State != "ESTABLISHED" || len(la[0].Children) != 0 {
		t.Fatalf("IKE SAs: %+v / %+v", la, lb)
	}
	if err := p.a.CreateChild("to-b"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first child SA", func() bool { p.net.settle(); return p.instA.count() == 2 && p.instB.count() == 2 })
	checkChildPair(t, p)
}
