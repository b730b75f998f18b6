package control

import (
	"net/netip"
	"sync"
	"testing"
)

// TestNATTraversal: A behind a NAT that rewrites its ports (500 to 61000,
// 4500 to 61001), and A forcing encapsulation without a NAT, as
// strongSwan's libipsec does. Both detect it, IKE_AUTH goes over port
// 4500 behind the non-ESP marker, and the child SAs are UDP-encapsulated to
// the addresses and ports as seen from each end.
func TestNATTraversal(t *testing.T) {
	nat := map[uint16]uint16{500: 61000, 4500: 61001}
	unnat := map[uint16]uint16{61000: 500, 61001: 4500}
	for _, tc := range []struct {
		name      string
		force     bool
		viaNAT    bool
		wantAPort uint16 // A's port as B sees it after floating
	}{
		{"napt", false, true, 61001},
		{"forced", true, false, 4500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
				a.ForceEncap = tc.force
			})
			var mu sync.Mutex
			var ports []uint16 // destination ports of A's requests, as sent
			markers := 0
			p.net.hook = func(d datagram) []datagram {
				mu.Lock()
				defer mu.Unlock()
				if d.from.Addr() == gwA.Addr() {
					ports = append(ports, d.to.Port())
					if d.to.Port() == PortNATT && len(d.b) > 4 && d.b[0]|d.b[1]|d.b[2]|d.b[3] == 0 {
						markers++
					}
					if tc.viaNAT {
						d.from = netip.AddrPortFrom(d.from.Addr(), nat[d.from.Port()])
					}
				}
				if d.to.Addr() == gwA.Addr() && tc.viaNAT {
					if real, ok := unnat[d.to.Port()]; ok {
						d.to = netip.AddrPortFrom(d.to.Addr(), real)
					}
				}
				return []datagram{d}
			}
			sa, _ := p.a.Initiate("to-b")
			if err := waitSA(t, sa); err != nil {
				t.Fatal(err)
			}
			if err := waitSA(t, p.respSA(t)); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if len(ports) != 2 || ports[0] != 500 || ports[1] != PortNATT || markers != 1 {
				t.Errorf("A sent to ports %v with %d non-ESP markers, want [500 4500] and 1", ports, markers)
			}
			mu.Unlock()
			for _, c := range p.instB.sas {
				if !c.Encap || c.Remote.Port() != tc.wantAPort || c.Local.Port() != PortNATT {
					t.Errorf("B's SA %#x: encap %v local %v remote %v", c.SPI, c.Encap, c.Local, c.Remote)
				}
			}
			for _, c := range p.instA.sas {
				if !c.Encap || c.Remote.Port() != PortNATT || c.Local.Port() != PortNATT {
					t.Errorf("A's SA %#x: encap %v local %v remote %v", c.SPI, c.Encap, c.Local, c.Remote)
				}
			}
			checkChildPair(t, p)
		})
	}
	// Without a NAT nothing floats.
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.instA.sas {
		if c.Encap || c.Remote.Port() != 500 {
			t.Errorf("no NAT, yet SA %#x encap %v remote %v", c.SPI, c.Encap, c.Remote)
		}
	}
}

// TestPort4500WithoutMarker: ESP and keepalives on port 4500 are not the
// daemon's; they are counted and dropped.
func TestPort4500WithoutMarker(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	to := netip.AddrPortFrom(gwB.Addr(), PortNATT)
	p.b.Receive([]byte{0xff}, gwA, to)
	p.b.Receive([]byte{0, 0, 0x10, 1, 0, 0, 0, 1, 1, 2, 3, 4}, gwA, to)
	if p.b.Stats.NotIKE.Load() != 2 {
		t.Fatalf("NotIKE %d, want 2", p.b.Stats.NotIKE.Load())
	}
}
