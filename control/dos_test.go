package control

import (
	"testing"
	"time"

	"github.com/espx/espx/crypto"
)

// craftInit sends B an IKE_SA_INIT request from A's address that no
// daemon will follow up: a half-open IKE SA at B.
func craftInit(t *testing.T, p *peers, spiI uint64) {
	t.Helper()
	ke, err := crypto.NewKeyExchange(crypto.CURVE25519)
	if err != nil {
		t.Fatal(err)
	}
	m := &Message{Header: Header{SPIi: spiI, Exchange: IKE_SA_INIT, Flags: FlagInitiator}, Payloads: []Payload{
		&SA{Proposals: p.cfgA.IKE},
		&KE{Group: uint16(crypto.CURVE25519), Data: ke.Public()},
		&Nonce{Data: newNonce()},
	}}
	p.net.Send(m.Encode(), gwA, gwB)
	p.net.settle()
}

func dosPeers(t *testing.T, l Limits) (*peers, *fakeClock) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	p.b.SetLimits(l)
	c, _ := withClock(p)
	return p, c
}

func TestCookies(t *testing.T) {
	p, _ := dosPeers(t, Limits{CookieThreshold: CookiesAlways})
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	if p.b.Stats.CookiesSent.Load() != 1 || p.b.Stats.BadCookie.Load() != 0 {
		t.Errorf("cookies sent %d, bad %d", p.b.Stats.CookiesSent.Load(), p.b.Stats.BadCookie.Load())
	}
	checkChildPair(t, p)
}

func TestCookieThreshold(t *testing.T) {
	p, _ := dosPeers(t, Limits{CookieThreshold: 3, BlockThreshold: 10})
	for i := range 3 {
		craftInit(t, p, uint64(0x1000+i))
	}
	if p.b.halfOpen != 3 || p.b.Stats.CookiesSent.Load() != 0 {
		t.Fatalf("%d half-open, %d cookies sent", p.b.halfOpen, p.b.Stats.CookiesSent.Load())
	}
	// From the threshold on, requests need a cookie; a real initiator
	// comes back with one and gets through.
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	if p.b.Stats.CookiesSent.Load() != 1 {
		t.Errorf("cookies sent %d, want 1", p.b.Stats.CookiesSent.Load())
	}
	// A request with a forged cookie is answered with a fresh cookie,
	// not with state.
	ke, _ := crypto.NewKeyExchange(crypto.CURVE25519)
	m := &Message{Header: Header{SPIi: 0x2000, Exchange: IKE_SA_INIT, Flags: FlagInitiator}, Payloads: []Payload{
		&Notify{NotifyType: COOKIE, Data: make([]byte, cookieLen)},
		&SA{Proposals: p.cfgA.IKE}, &KE{Group: uint16(crypto.CURVE25519), Data: ke.Public()}, &Nonce{Data: newNonce()},
	}}
	p.net.Send(m.Encode(), gwA, gwB)
	p.net.settle()
	if p.b.Stats.BadCookie.Load() != 1 || p.b.halfOpen != 3 {
		t.Errorf("forged cookie: bad %d, half-open %d", p.b.Stats.BadCookie.Load(), p.b.halfOpen)
	}
}

func TestBlockThresholdAndHalfOpenTimeout(t *testing.T) {
	p, clock := dosPeers(t, Limits{BlockThreshold: 5, CookieThreshold: 100})
	for i := range 6 {
		craftInit(t, p, uint64(0x1000+i))
	}
	if p.b.halfOpen != 5 || p.b.Stats.InitDropped.Load() != 1 {
		t.Fatalf("%d half-open, %d dropped; want 5 and 1", p.b.halfOpen, p.b.Stats.InitDropped.Load())
	}
	// A retransmission of a half-open request is answered from the
	// cache, not counted as new.
	sent := len(p.net.sent)
	craftInit(t, p, 0x1000) // new keys, same SPI: treated as a retransmission
	if p.b.halfOpen != 5 || p.b.Stats.Retransmitted.Load() != 1 || len(p.net.sent) != sent+2 {
		t.Fatalf("retransmission: %d half-open, %d resent", p.b.halfOpen, p.b.Stats.Retransmitted.Load())
	}
	clock.Advance(29*time.Second, p.net.settle)
	if p.b.halfOpen != 5 {
		t.Fatalf("%d half-open after 29 s", p.b.halfOpen)
	}
	clock.Advance(time.Second, p.net.settle)
	if p.b.halfOpen != 0 || p.b.sas.len() != 0 || len(p.b.byInit) != 0 || len(p.b.halfOpenBy) != 0 || p.b.Stats.HalfOpenExpired.Load() != 5 {
		t.Fatalf("after the half-open timeout: %d half-open, %d SAs, %d expired", p.b.halfOpen, p.b.sas.len(), p.b.Stats.HalfOpenExpired.Load())
	}
	// And the peer can connect again.
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
}

func TestLimitsDrop(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Limits
		pre  int
	}{
		{"initiator only", Limits{InitiatorOnly: true}, 0},
		{"init limit half open", Limits{InitLimitHalfOpen: 2, BlockThreshold: 10, CookieThreshold: 100}, 2},
		{"ike sa limit", Limits{IKESALimit: 2, BlockThreshold: 10, CookieThreshold: 100}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := dosPeers(t, tc.l)
			for i := range tc.pre {
				craftInit(t, p, uint64(0x1000+i))
			}
			before := p.b.sas.len()
			craftInit(t, p, 0x3000)
			if p.b.Stats.InitDropped.Load() != 1 || p.b.sas.len() != before {
				t.Fatalf("dropped %d, SAs %d (before %d)", p.b.Stats.InitDropped.Load(), p.b.sas.len(), before)
			}
		})
	}
}
