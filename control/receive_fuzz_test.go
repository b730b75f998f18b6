package control

import (
	"net/netip"
	"testing"
)

// FuzzReceive throws datagrams at a responder daemon that has an
// established IKE SA, on both ports: whatever arrives, it must not panic,
// and what fails to decode or authenticate must not break the SA.
func FuzzReceive(f *testing.F) {
	p := twoPeers(f, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	sa, err := p.a.Initiate("to-b")
	if err != nil {
		f.Fatal(err)
	}
	if err := sa.Wait(); err != nil {
		f.Fatal(err)
	}
	p.net.settle()
	p.net.mu.Lock()
	for _, d := range p.net.sent {
		f.Add(d.b, false)
		f.Add(append([]byte{0, 0, 0, 0}, d.b...), true)
	}
	p.net.mu.Unlock()
	f.Fuzz(func(t *testing.T, b []byte, natt bool) {
		to := gwB
		if natt {
			to = netip.AddrPortFrom(gwB.Addr(), PortNATT)
		}
		p.b.Receive(b, gwA, to)
	})
}
