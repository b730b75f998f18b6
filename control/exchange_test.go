package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/espx/espx/crypto"
	"github.com/espx/espx/dataplane"
)

// fakeNet carries datagrams between daemons in one process, in order, on
// its own goroutine, so that a daemon never receives inside its own Send.
// A hook may drop, duplicate or alter datagrams.
type fakeNet struct {
	mu      sync.Mutex
	daemons map[netip.Addr]*Daemon
	q       chan datagram
	hook    func(d datagram) []datagram
	onSend  func(d datagram)
	sent    []datagram
	busy    int // datagrams taken off the queue and not yet delivered
	// gate, held by a test, stops deliveries: sends still queue.
	gate sync.RWMutex
	// closeMu and closed let the test end while daemons still run their
	// timers (NAT keepalives on the real clock): later sends are dropped.
	closeMu sync.RWMutex
	closed  bool
}

type datagram struct {
	b        []byte
	from, to netip.AddrPort
}

func newFakeNet(tb testing.TB) *fakeNet {
	n := &fakeNet{daemons: map[netip.Addr]*Daemon{}, q: make(chan datagram, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range n.q {
			// Deliver under the gate's read lock, so that a test holding
			// it stops deliveries while sends still queue.
			n.gate.RLock()
			n.mu.Lock()
			dst, hook := n.daemons[d.to.Addr()], n.hook
			n.sent = append(n.sent, d)
			n.mu.Unlock()
			out := []datagram{d}
			if hook != nil {
				out = hook(d)
			}
			for _, o := range out {
				if dst != nil {
					dst.Receive(o.b, o.from, o.to)
				}
			}
			n.gate.RUnlock()
			n.mu.Lock()
			n.busy--
			n.mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		n.closeMu.Lock()
		n.closed = true
		close(n.q)
		n.closeMu.Unlock()
		<-done
	})
	return n
}

func (n *fakeNet) Send(b []byte, from, to netip.AddrPort) error {
	n.closeMu.RLock()
	defer n.closeMu.RUnlock()
	if n.closed {
		return nil
	}
	d := datagram{append([]byte(nil), b...), from, to}
	n.mu.Lock()
	n.busy++
	if n.onSend != nil {
		n.onSend(d)
	}
	n.mu.Unlock()
	n.q <- d
	return nil
}

// fakeInstaller records what the daemon installs.
type fakeInstaller struct {
	mu   sync.Mutex
	next uint32
	sas  map[uint32]*ChildSA
	fail bool
}

func newFakeInstaller(base uint32) *fakeInstaller {
	return &fakeInstaller{next: base, sas: map[uint32]*ChildSA{}}
}

func (f *fakeInstaller) AllocSPI() (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	return f.next, nil
}

func (f *fakeInstaller) AddSA(sa *ChildSA) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("installer refuses")
	}
	c := *sa
	f.sas[sa.SPI] = &c
	return nil
}

func (f *fakeInstaller) DeleteSA(spi uint32, inbound bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sas, spi)
	return nil
}

var (
	gwA = netip.MustParseAddrPort("192.0.2.1:500")
	gwB = netip.MustParseAddrPort("192.0.2.2:500")
)

type peers struct {
	a, b       *Daemon
	instA      *fakeInstaller
	instB      *fakeInstaller
	net        *fakeNet
	cfgA, cfgB *PeerConfig
}

// twoPeers builds gateway A (initiator) and B with matching configurations
// that mod may change.
func twoPeers(t testing.TB, ikeA, ikeB, espA, espB string, mod func(a, b *PeerConfig)) *peers {
	t.Helper()
	psk := []byte("a pre-shared key of some length")
	cfgA := &PeerConfig{
		Name: "to-b", Local: gwA, Remote: gwB,
		LocalID: &ID{IDType: IDFQDN, Data: []byte("gw-a.example.net")}, RemoteID: &ID{IDType: IDFQDN, Data: []byte("gw-b.example.net")},
		PSK: psk, IKE: mustParse(t, ProtoIKE, ikeA), ESP: mustParse(t, ProtoESP, espA),
		LocalTS:  []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("198.51.100.0/24"))},
		RemoteTS: []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("203.0.113.0/24"))},
	}
	cfgB := &PeerConfig{
		Name: "to-a", Local: gwB, Remote: gwA,
		LocalID: cfgA.RemoteID, RemoteID: cfgA.LocalID,
		PSK: psk, IKE: mustParse(t, ProtoIKE, ikeB), ESP: mustParse(t, ProtoESP, espB),
		LocalTS: cfgA.RemoteTS, RemoteTS: cfgA.LocalTS,
	}
	if mod != nil {
		mod(cfgA, cfgB)
	}
	p := &peers{net: newFakeNet(t), instA: newFakeInstaller(0xa0000000), instB: newFakeInstaller(0xb0000000), cfgA: cfgA, cfgB: cfgB}
	var err error
	if p.a, err = NewDaemon(p.net, p.instA, []*PeerConfig{cfgA}, nil); err != nil {
		t.Fatal(err)
	}
	if p.b, err = NewDaemon(p.net, p.instB, []*PeerConfig{cfgB}, nil); err != nil {
		t.Fatal(err)
	}
	p.net.daemons[gwA.Addr()] = p.a
	p.net.daemons[gwB.Addr()] = p.b
	return p
}

func waitSA(t *testing.T, sa *IKESA) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- sa.Wait() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("IKE SA neither established nor failed in 10 s")
		return nil
	}
}

// respSA finds B's IKE SA, once A's is done.
func (p *peers) respSA(t *testing.T) *IKESA {
	t.Helper()
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	for _, sa := range p.b.sas.all() {
		return sa
	}
	t.Fatal("responder has no IKE SA")
	return nil
}

func TestExchangeEstablishes(t *testing.T) {
	for _, tc := range []struct{ ike, esp string }{
		{"aes128gcm16-prfsha256-x25519", "aes128gcm16-esn"},
		{"aes256gcm16-prfsha384-ecp384", "aes256gcm16-noesn"},
		{"aes256-sha256-ecp256", "aes128-sha256-esn"},
		{"chacha20poly1305-prfsha512-modp2048", "chacha20poly1305"},
		{"aes128-sha512-x25519", "aes256-sha512-noesn"},
	} {
		t.Run(tc.ike+"/"+tc.esp, func(t *testing.T) {
			p := twoPeers(t, tc.ike, tc.ike, tc.esp, tc.esp, nil)
			sa, err := p.a.Initiate("to-b")
			if err != nil {
				t.Fatal(err)
			}
			if err := waitSA(t, sa); err != nil {
				t.Fatal(err)
			}
			if err := waitSA(t, p.respSA(t)); err != nil {
				t.Fatalf("responder: %v", err)
			}
			checkChildPair(t, p)
		})
	}
}

// checkChildPair: each side's outbound SA is the other's inbound SA, with
// the same keys, and a packet protected by one data plane opens in the
// other's.
func checkChildPair(t *testing.T, p *peers) {
	t.Helper()
	if len(p.instA.sas) != 2 || len(p.instB.sas) != 2 {
		t.Fatalf("installed %d SAs at A, %d at B, want 2 each", len(p.instA.sas), len(p.instB.sas))
	}
	for _, dir := range [][2]*fakeInstaller{{p.instA, p.instB}, {p.instB, p.instA}} {
		for spi, out := range dir[0].sas {
			if out.Inbound {
				continue
			}
			in, ok := dir[1].sas[spi]
			if !ok || !in.Inbound {
				t.Fatalf("outbound SPI %#x has no inbound SA at the peer", spi)
			}
			if !bytes.Equal(out.Transform.EncrKey, in.Transform.EncrKey) || !bytes.Equal(out.Transform.IntegKey, in.Transform.IntegKey) || out.ESN != in.ESN {
				t.Fatalf("SPI %#x: keys or ESN differ between the ends", spi)
			}
			if in.ReplayWindow != DefaultReplayWindow {
				t.Errorf("inbound replay window %d", in.ReplayWindow)
			}
			sendThrough(t, out, in)
		}
	}
}

// sendThrough protects a packet with the data plane's runtime SA built from
// out and opens it with one built from in.
func sendThrough(t *testing.T, out, in *ChildSA) {
	t.Helper()
	mk := func(c *ChildSA) dataplane.SAConfig {
		return dataplane.SAConfig{SPI: c.SPI, Transform: c.Transform, ESN: c.ESN, Src: c.Local.Addr(), Dst: c.Remote.Addr(),
			Encap: c.Encap, SrcPort: c.Local.Port(), DstPort: c.Remote.Port(), ReplayWindow: c.ReplayWindow}
	}
	o, err := dataplane.NewOutboundSA(mk(out))
	if err != nil {
		t.Fatal(err)
	}
	i, err := dataplane.NewInboundSA(mk(in))
	if err != nil {
		t.Fatal(err)
	}
	pkt := []byte{0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 51, 100, 10, 203, 0, 113, 10, 0x13, 0x88, 0x17, 0x70, 0, 8, 0, 0}
	buf := make([]byte, 512)
	copy(buf[200:], pkt)
	f := dataplane.Frame{Buf: buf, Off: 200, Len: len(pkt)}
	e := dataplane.NewEngine(nil)
	if d := e.Encap(o, &f); d != dataplane.DropNone {
		t.Fatalf("encap: %v", d)
	}
	if out.Encap && out.Remote.Port() != PortNATT {
		// The receiver's NAT maps its public port back to 4500 (IPv4:
		// the UDP checksum is zero and needs no update).
		binary.BigEndian.PutUint16(f.Data()[20+2:], PortNATT)
	}
	if d := e.Decap(i, &f); d != dataplane.DropNone {
		t.Fatalf("decap with the peer's SA: %v", d)
	}
	if !bytes.Equal(f.Data(), pkt) {
		t.Fatal("packet changed on the way through")
	}
}

func TestExchangeInvalidKERetry(t *testing.T) {
	// A offers x25519 first but also ecp256; B only takes ecp256.
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519-ecp256", "aes128gcm16-prfsha256-ecp256", "aes128gcm16", "aes128gcm16", nil)
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	if p.b.Stats.InvalidKE.Load() != 1 {
		t.Errorf("INVALID_KE_PAYLOAD sent %d times", p.b.Stats.InvalidKE.Load())
	}
	checkChildPair(t, p)
}

func TestExchangeFailures(t *testing.T) {
	t.Run("no IKE proposal", func(t *testing.T) {
		p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes256-sha256-modp2048", "aes128gcm16", "aes128gcm16", nil)
		sa, _ := p.a.Initiate("to-b")
		if err := waitSA(t, sa); !errors.Is(err, ErrNotify) {
			t.Fatalf("%v, want NO_PROPOSAL_CHOSEN", err)
		}
		if p.b.Stats.NoProposal.Load() != 1 || p.b.sas.len() != 0 {
			t.Errorf("responder: %d NO_PROPOSAL_CHOSEN, %d SAs kept", p.b.Stats.NoProposal.Load(), p.b.sas.len())
		}
	})
	t.Run("wrong PSK", func(t *testing.T) {
		p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
			b.PSK = []byte("another pre-shared key, not A's")
		})
		sa, _ := p.a.Initiate("to-b")
		if err := waitSA(t, sa); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("%v, want authentication failure", err)
		}
		if len(p.instA.sas)+len(p.instB.sas) != 0 {
			t.Error("child SAs installed without authentication")
		}
	})
	t.Run("wrong identity", func(t *testing.T) {
		p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
			b.RemoteID = &ID{IDType: IDFQDN, Data: []byte("someone-else.example.net")}
		})
		sa, _ := p.a.Initiate("to-b")
		if err := waitSA(t, sa); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("%v, want authentication failure", err)
		}
	})
	t.Run("no ESP proposal", func(t *testing.T) {
		p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16-esn", "aes128gcm16-noesn", nil)
		sa, _ := p.a.Initiate("to-b")
		if err := waitSA(t, sa); err != nil {
			t.Fatalf("the IKE SA should stand without its child: %v", err)
		}
		if len(p.instA.sas) != 0 || len(p.instB.sas) != 0 || p.b.Stats.NoProposal.Load() != 1 {
			t.Errorf("child SAs installed: A %d B %d", len(p.instA.sas), len(p.instB.sas))
		}
	})
	t.Run("traffic selectors", func(t *testing.T) {
		p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
			b.RemoteTS = []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("192.0.2.0/24"))}
		})
		sa, _ := p.a.Initiate("to-b")
		if err := waitSA(t, sa); err != nil {
			t.Fatal(err)
		}
		if p.b.Stats.TSUnacceptable.Load() != 1 || len(p.instA.sas) != 0 {
			t.Errorf("TS_UNACCEPTABLE %d, A installed %d", p.b.Stats.TSUnacceptable.Load(), len(p.instA.sas))
		}
	})
}

// TestExchangeNarrowsSelectors: A asks for a /16, B allows a /24 of it and
// one port; both install the narrowed selectors.
func TestExchangeNarrowsSelectors(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
		a.RemoteTS = []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("203.0.0.0/16"))}
		ts := SelectorFromPrefix(netip.MustParsePrefix("203.0.113.0/24"))
		ts.IPProto, ts.StartPort, ts.EndPort = 17, 53, 53
		b.LocalTS = []TrafficSelector{ts}
	})
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.instA.sas {
		r := c.RemoteTS
		if len(r) != 1 || r[0].Start != netip.MustParseAddr("203.0.113.0") || r[0].End != netip.MustParseAddr("203.0.113.255") || r[0].IPProto != 17 || r[0].StartPort != 53 || r[0].EndPort != 53 {
			t.Fatalf("A installed remote selectors %+v", r)
		}
	}
}

// TestExchangeDuplicatesAndTampering: every datagram arrives twice, and a
// corrupted copy of each IKE_AUTH message arrives first. The exchange still
// completes once; duplicates get the cached response; the corrupted copies
// are counted and change nothing.
func TestExchangeDuplicatesAndTampering(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	p.net.hook = func(d datagram) []datagram {
		h, _ := DecodeHeader(d.b)
		out := []datagram{}
		if h.Exchange == IKE_AUTH {
			bad := append([]byte(nil), d.b...)
			bad[len(bad)-5] ^= 0x40
			out = append(out, datagram{bad, d.from, d.to})
		}
		return append(out, d, d)
	}
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	if err := waitSA(t, p.respSA(t)); err != nil {
		t.Fatal(err)
	}
	// Let the last duplicates arrive.
	time.Sleep(100 * time.Millisecond)
	if got := p.b.Stats.AuthFailed.Load() + p.a.Stats.AuthFailed.Load(); got != 2 {
		t.Errorf("%d corrupted messages counted, want 2", got)
	}
	if got := p.b.Stats.Retransmitted.Load(); got != 2 {
		t.Errorf("responder resent %d cached responses, want 2 (IKE_SA_INIT and IKE_AUTH)", got)
	}
	if p.b.sas.len() != 1 {
		t.Errorf("responder has %d IKE SAs", p.b.sas.len())
	}
	checkChildPair(t, p)
}

func TestChildKeysMatchDerivation(t *testing.T) {
	// The child SA's keys come from prf+(SK_d, Ni | Nr): recompute them
	// from the IKE SA's state and compare with what was installed.
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes256gcm16", "aes256gcm16", nil)
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	sa.mu.Lock()
	defer sa.mu.Unlock()
	km, err := sa.prf.Plus(sa.keys.SKd, 2*36, sa.ni, sa.nr)
	if err != nil {
		t.Fatal(err)
	}
	outSA := p.instA.sas[sa.children[0].outSPI]
	if !bytes.Equal(outSA.Transform.EncrKey, km[:36]) || outSA.Transform.Encr != crypto.ENCR_AES_GCM_16 {
		t.Fatal("initiator's outbound key is not the first 36 bytes of KEYMAT")
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
