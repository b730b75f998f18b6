package control

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/espx/espx/internal/netnstest"
	"github.com/espx/espx/internal/sswantest"
)

// Interoperability with a real strongSwan charon (5.9.8 from Debian, with
// kernel-libipsec, which forces NAT traversal) in a network namespace:
// espx as initiator and as responder, AES-GCM and AES-CBC with HMAC child
// SAs. Each side verifies the other's AUTH payload; the child SA's SPIs
// must agree with swanctl's, and its keys with the ones charon logs.

// syncBuffer is a log sink that the daemon's goroutines and the test can
// share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// interopPair joins espx in a namespace of its own (gwA, 192.0.2.1) and a
// strongSwan charon running conf (gwB, 192.0.2.2) by a veth pair, and
// returns charon and espx's IKE transport. libipsec routes a child SA's
// traffic from an address in its local selectors: gwB gets loAddrs on its
// loopback for that.
func interopPair(t *testing.T, name, conf string, loAddrs ...string) (*sswantest.Charon, *UDPTransport) {
	t.Helper()
	sswantest.Require(t)
	nsA := netnstest.New(t, name+"-a")
	nsB := netnstest.New(t, name+"-b")
	netnstest.Veth(t, nsA, "wan0", nsB, "wan0")
	nsA.IP(t, "addr", "add", "192.0.2.1/24", "dev", "wan0")
	nsB.IP(t, "addr", "add", "192.0.2.2/24", "dev", "wan0")
	for _, a := range loAddrs {
		nsB.IP(t, "addr", "add", a, "dev", "lo")
	}
	ch := sswantest.Start(t, nsB, conf)
	var tr *UDPTransport
	if err := nsA.Do(func() (err error) {
		tr, err = ListenUDP([]netip.Addr{gwA.Addr()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return ch, tr
}

// swanSecrets is the secrets section for charon's side of a PSK between
// gw-b.example.net and gw-a.example.net.
func swanSecrets(psk []byte) string {
	return fmt.Sprintf(`secrets {
  ike-espx {
    id-local = gw-b.example.net
    id-remote = gw-a.example.net
    secret = 0x%x
  }
}
`, psk)
}

func TestStrongSwanInterop(t *testing.T) {
	sswantest.Require(t)
	psk := []byte("a pre-shared key for the interop test")
	conf := `connections {
  espx {
    version = 2
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = aes128gcm16-prfsha256-x25519,aes256-sha256-ecp256
    local {
      auth = psk
      id = gw-b.example.net
    }
    remote {
      auth = psk
      id = gw-a.example.net
    }
    children {
      espx {
        mode = tunnel
        local_ts = 203.0.113.0/24
        remote_ts = 198.51.100.0/24
        esp_proposals = aes128gcm16,aes256-sha256,aes256-sha256-ecp256
        start_action = none
      }
    }
  }
}
` + swanSecrets(psk)
	ch, tr := interopPair(t, "espx-ike", conf, "203.0.113.1/32")

	for _, tc := range []struct{ name, ike, esp string }{
		{"espx initiates/gcm", "aes128gcm16-prfsha256-x25519", "aes128gcm16"},
		{"espx initiates/cbc", "aes256-sha256-ecp256", "aes256-sha256"},
		{"strongSwan initiates/gcm", "aes128gcm16-prfsha256-x25519", "aes128gcm16"},
		{"espx initiates/rekey by strongSwan", "aes128gcm16-prfsha256-x25519", "aes128gcm16"},
		{"espx initiates/rekey by strongSwan with PFS", "aes128gcm16-prfsha256-x25519", "aes256-sha256-ecp256"},
		{"espx initiates/IKE rekey then child rekey by strongSwan", "aes256-sha256-ecp256", "aes128gcm16"},
		{"espx initiates/rekey by espx with PFS, delete by espx", "aes128gcm16-prfsha256-x25519", "aes256-sha256-ecp256"},
		{"espx initiates/IKE rekey by espx, then rekey by espx with PFS", "aes128gcm16-prfsha256-x25519", "aes256-sha256-ecp256"},
		{"espx initiates childless, then a child SA", "aes128gcm16-prfsha256-x25519", "aes128gcm16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := newFakeInstaller(0xe5000000)
			cfg := &PeerConfig{
				Name: "to-b", Local: gwA, Remote: gwB,
				LocalID: &ID{IDType: IDFQDN, Data: []byte("gw-a.example.net")}, RemoteID: &ID{IDType: IDFQDN, Data: []byte("gw-b.example.net")},
				PSK: psk, IKE: mustParse(t, ProtoIKE, tc.ike), ESP: mustParse(t, ProtoESP, tc.esp),
				LocalTS:   []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("198.51.100.0/24"))},
				RemoteTS:  []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("203.0.113.0/24"))},
				Childless: strings.Contains(tc.name, "childless"),
			}
			logs := &syncBuffer{}
			logFrom := ch.LogSize(t)
			d, err := NewDaemon(tr, inst, []*PeerConfig{cfg}, slog.New(slog.NewTextHandler(logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			tr.Serve(d)
			defer func() {
				if t.Failed() {
					t.Logf("espx log:\n%s", logs.String())
				}
			}()
			initiator := strings.HasPrefix(tc.name, "espx")
			var ike *IKESA
			if initiator {
				ike, err = d.Initiate("to-b")
				if err != nil {
					t.Fatal(err)
				}
				if err := waitSA(t, ike); err != nil {
					t.Fatal(err)
				}
				if cfg.Childless {
					// RFC 6023: strongSwan accepts the IKE SA alone; the
					// child SA comes with CREATE_CHILD_SA.
					if l := ch.Swanctl(t, "--list-sas"); !strings.Contains(l, "ESTABLISHED") || strings.Contains(l, "INSTALLED") {
						t.Fatalf("childless IKE SA: strongSwan shows\n%s", l)
					}
					if err := d.CreateChild("to-b"); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				ch.Swanctl(t, "--initiate", "--child", "espx", "--timeout", "20")
			}
			var sIn, sOut uint32
			for i := 0; ; i++ {
				var ok bool
				if sIn, sOut, ok = ch.ChildSPIs(t); ok {
					break
				}
				if i == 50 {
					t.Fatalf("strongSwan shows no installed child SA:\n%s", ch.Swanctl(t, "--list-sas"))
				}
				time.Sleep(100 * time.Millisecond)
			}
			if strings.Contains(tc.name, "IKE rekey") {
				// The new IKE SA replaces the old one; the child rekey
				// below then runs over it, which proves its keys.
				var before uint64
				for _, sa := range d.sas.all() {
					before = sa.ourSPI()
				}
				if strings.Contains(tc.name, "IKE rekey by espx") {
					if err := d.RekeyIKE("to-b"); err != nil {
						t.Fatal(err)
					}
				} else {
					ch.Swanctl(t, "--rekey", "--ike", "espx")
				}
				for i := 0; ; i++ {
					old := d.sas.get(before) != nil
					n := d.sas.len()
					if !old && n == 1 {
						break
					}
					if i == 100 {
						t.Fatalf("IKE rekey: espx has %d IKE SAs, old one still there: %v\n%s", n, old, ch.Swanctl(t, "--list-sas"))
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			if strings.Contains(tc.name, "rekey") {
				// strongSwan rekeys the child SA (CREATE_CHILD_SA with
				// REKEY_SA), then deletes the old one; only the new pair
				// may remain, on both sides.
				oldIn, oldOut := sIn, sOut
				logFrom = ch.LogSize(t)
				if strings.Contains(tc.name, "by espx") {
					if err := d.RekeyChild(oldOut); err != nil {
						t.Fatal(err)
					}
				} else {
					ch.Swanctl(t, "--rekey", "--child", "espx")
				}
				for i := 0; ; i++ {
					inst.mu.Lock()
					n := len(inst.sas)
					_, oldGone := inst.sas[oldOut]
					inst.mu.Unlock()
					var ok bool
					sIn, sOut, ok = ch.ChildSPIs(t)
					if ok && sIn != oldIn && sOut != oldOut && n == 2 && !oldGone {
						break
					}
					if i == 100 {
						t.Fatalf("rekey: strongSwan %08x/%08x (was %08x/%08x), espx has %d SAs:\n%s", sIn, sOut, oldIn, oldOut, n, ch.Swanctl(t, "--list-sas"))
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			inst.mu.Lock()
			ours := map[uint32]*ChildSA{}
			for spi, c := range inst.sas {
				ours[spi] = c
			}
			inst.mu.Unlock()
			in, out := ours[sOut], ours[sIn]
			if in == nil || !in.Inbound || out == nil || out.Inbound {
				t.Fatalf("strongSwan's SPIs in %08x out %08x do not match ours %v", sIn, sOut, inst.sas)
			}
			if !in.Encap || !out.Encap || out.Remote.Port() != PortNATT {
				t.Errorf("libipsec forces NAT traversal, yet encap %v/%v to %v", in.Encap, out.Encap, out.Remote)
			}
			keys := ch.LoggedKeys(t, logFrom)
			// charon's "initiator" keys are those from the initiator of
			// the exchange that made the child SA to its responder: espx
			// only for an IKE_AUTH espx started; strongSwan started the
			// rekeys.
			i2r, r2i := out, in
			if !initiator || strings.Contains(tc.name, "rekey by strongSwan") {
				i2r, r2i = in, out
			}
			for name, want := range map[string][]byte{
				"encryption initiator": i2r.Transform.EncrKey, "encryption responder": r2i.Transform.EncrKey,
				"integrity initiator": i2r.Transform.IntegKey, "integrity responder": r2i.Transform.IntegKey,
			} {
				if got := keys[name]; !bytes.Equal(got, want) {
					t.Errorf("%s key: strongSwan has %x, espx %x", name, got, want)
				}
			}
			// One side deletes the IKE SA; the other answers; both remove
			// the child SAs and the IKE SA.
			if strings.Contains(tc.name, "delete by espx") {
				ike.Delete()
				for i := 0; strings.Contains(ch.Swanctl(t, "--list-sas"), "ESTABLISHED"); i++ {
					if i == 50 {
						t.Fatalf("strongSwan still has the IKE SA espx deleted")
					}
					time.Sleep(50 * time.Millisecond)
				}
			} else {
				ch.Swanctl(t, "--terminate", "--ike", "espx", "--timeout", "10")
			}
			for i := 0; ; i++ {
				inst.mu.Lock()
				n := len(inst.sas)
				inst.mu.Unlock()
				m := d.sas.len()
				if n == 0 && m == 0 {
					break
				}
				if i == 50 {
					t.Fatalf("after strongSwan's delete espx still has %d child SAs and %d IKE SAs", n, m)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
