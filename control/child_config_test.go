package control

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
)

// multiPeers is twoPeers with more connections to the same peer at each
// end: extraA at A, extraB at B, each listed after the original.
func multiPeers(t *testing.T, extraA, extraB []*PeerConfig) *peers {
	t.Helper()
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
		// The original connections cover the lower half of B's net.
		a.RemoteTS = []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("203.0.113.0/25"))}
		b.LocalTS = a.RemoteTS
	})
	var err error
	if p.a, err = NewDaemon(p.net, p.instA, append([]*PeerConfig{p.cfgA}, extraA...), nil); err != nil {
		t.Fatal(err)
	}
	if p.b, err = NewDaemon(p.net, p.instB, append([]*PeerConfig{p.cfgB}, extraB...), nil); err != nil {
		t.Fatal(err)
	}
	p.net.mu.Lock()
	p.net.daemons[gwA.Addr()], p.net.daemons[gwB.Addr()] = p.a, p.b
	p.net.mu.Unlock()
	return p
}

// sibling is a connection like c, for the same peer, with other remote
// (or local) selectors and ESP proposals.
func sibling(t *testing.T, c *PeerConfig, name, esp string, local, remote string) *PeerConfig {
	s := *c
	s.Name, s.ESP = name, mustParse(t, ProtoESP, esp)
	s.LocalTS = []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix(local))}
	s.RemoteTS = []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix(remote))}
	return &s
}

// childrenByConn lists the child SAs of d's IKE SAs by connection name and
// proposal.
func childrenByConn(d *Daemon) map[string][]ChildInfo {
	out := map[string][]ChildInfo{}
	for _, sa := range d.List() {
		for _, c := range sa.Children {
			out[c.Name] = append(out[c.Name], c)
		}
	}
	return out
}

// TestResponderPicksConnectionBySelectors: a peer negotiates the child SAs
// of two connections to us in one IKE SA, as strongSwan does with two
// children of one connection; each child SA gets the connection whose
// selectors it fits, with that connection's proposals, and keeps it across
// rekeys by either end; a peer's close reports that connection only.
func TestResponderPicksConnectionBySelectors(t *testing.T) {
	p := multiPeers(t, nil, nil)
	dbA := sibling(t, p.cfgA, "db", "aes256gcm16", "198.51.100.0/24", "203.0.113.128/25")
	otherA := sibling(t, p.cfgA, "other", "aes128gcm16", "198.51.100.0/24", "192.0.2.128/25")
	dbB := sibling(t, p.cfgB, "b-db", "aes256gcm16", "203.0.113.128/25", "198.51.100.0/24")
	p = multiPeers(t, []*PeerConfig{dbA, otherA}, []*PeerConfig{dbB})
	var mu sync.Mutex
	var closedAtA []string
	p.a.OnPeerClose(func(name string) {
		mu.Lock()
		closedAtA = append(closedAtA, name)
		mu.Unlock()
	})

	sa, err := p.a.Initiate("to-b")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	if err := sa.CreateChildFor("db"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second child SA", func() bool { return p.instA.count() == 4 && p.instB.count() == 4 })
	if n := len(p.b.List()); n != 1 {
		t.Fatalf("B has %d IKE SAs, want the one", n)
	}
	check := func(when string) {
		t.Helper()
		b := childrenByConn(p.b)
		a := childrenByConn(p.a)
		for _, c := range []struct{ a, b, esp, bLocal string }{
			{"to-b", "to-a", "aes128gcm16-noesn", "203.0.113.0/25"},
			{"db", "b-db", "aes256gcm16-noesn", "203.0.113.128/25"},
		} {
			if len(a[c.a]) != 1 || len(b[c.b]) != 1 {
				t.Fatalf("%s: child SAs at A %v, at B %v", when, a, b)
			}
			ca, cb := a[c.a][0], b[c.b][0]
			if ca.InSPI != cb.OutSPI || ca.OutSPI != cb.InSPI {
				t.Errorf("%s: %s's SPIs %08x/%08x, B's %s %08x/%08x", when, c.a, ca.InSPI, ca.OutSPI, c.b, cb.InSPI, cb.OutSPI)
			}
			if ca.Proposal != c.esp || cb.Proposal != c.esp {
				t.Errorf("%s: %s %s, %s %s; want %s", when, c.a, ca.Proposal, c.b, cb.Proposal, c.esp)
			}
			if !slices.Equal(cb.LocalTS, []string{c.bLocal}) || !slices.Equal(ca.RemoteTS, []string{c.bLocal}) {
				t.Errorf("%s: selectors %v === %v at B", when, cb.LocalTS, cb.RemoteTS)
			}
		}
		// The installer was told the connection of each SA.
		p.instB.mu.Lock()
		defer p.instB.mu.Unlock()
		for spi, s := range p.instB.sas {
			want := "to-a"
			if len(s.Transform.EncrKey) == 36 {
				want = "b-db"
			}
			if s.Conn != want {
				t.Errorf("%s: SA %08x installed for %q, want %q", when, spi, s.Conn, want)
			}
		}
	}
	check("created")
	checkPairs(t, p)

	// Rekeys keep each child SA's connection and proposals: B rekeys db's,
	// A to-b's.
	for _, r := range []struct {
		d    *Daemon
		conn string
	}{{p.b, "b-db"}, {p.a, "to-b"}} {
		old := childrenByConn(r.d)[r.conn][0].InSPI
		if err := r.d.RekeyChild(old); err != nil {
			t.Fatal(err)
		}
		eventually(t, "rekey of "+r.conn, func() bool {
			c := childrenByConn(r.d)[r.conn]
			return len(c) == 1 && c[0].InSPI != old && p.instA.count() == 4 && p.instB.count() == 4
		})
		check("after the rekey of " + r.conn)
	}
	checkPairs(t, p)

	// A child SA that fits no connection of B's is refused, and the IKE
	// SA stays.
	if err := sa.CreateChildFor("other"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "refusal", func() bool { return p.b.Stats.TSUnacceptable.Load() == 1 })
	p.net.settle()
	if p.instA.count() != 4 || sa.State() != "ESTABLISHED" {
		t.Fatalf("after the refusal: %d SAs at A, IKE SA %s", p.instA.count(), sa.State())
	}
	if err := sa.CreateChildFor("nobody"); err == nil {
		t.Error("CreateChildFor of an unknown connection succeeded")
	}

	// B closes db's tunnel: A hears that db closed, not to-b.
	dbIn := childrenByConn(p.b)["b-db"][0].InSPI
	if err := p.b.DeleteChild(dbIn); err != nil {
		t.Fatal(err)
	}
	eventually(t, "db closed", func() bool { return p.instA.count() == 2 && p.instB.count() == 2 })
	p.net.settle()
	mu.Lock()
	if !slices.Equal(closedAtA, []string{"db"}) {
		t.Errorf("A heard of closes %v, want [db]", closedAtA)
	}
	mu.Unlock()
	if c := childrenByConn(p.a); len(c["to-b"]) != 1 || len(c["db"]) != 0 {
		t.Errorf("after db's close A has %v", c)
	}
}

// checkPairs: every outbound SA at one end is an inbound SA at the other,
// with the same keys, and carries packets.
func checkPairs(t *testing.T, p *peers) {
	t.Helper()
	p.instA.mu.Lock()
	defer p.instA.mu.Unlock()
	p.instB.mu.Lock()
	defer p.instB.mu.Unlock()
	for _, dir := range [][2]*fakeInstaller{{p.instA, p.instB}, {p.instB, p.instA}} {
		for spi, out := range dir[0].sas {
			if out.Inbound {
				continue
			}
			in, ok := dir[1].sas[spi]
			if !ok || !in.Inbound || in.Conn == "" {
				t.Fatalf("outbound SPI %#x has no inbound SA at the peer", spi)
			}
			sendThrough(t, out, in)
		}
	}
}

// TestResponderPicksConnectionByIdentity: two connections from one peer
// address with other identities and keys; the initiator's identity picks
// the one that authenticates it.
func TestResponderPicksConnectionByIdentity(t *testing.T) {
	p := multiPeers(t, nil, nil)
	alt := *p.cfgB
	alt.Name, alt.RemoteID = "alt", &ID{IDType: IDFQDN, Data: []byte("branch-7.example.net")}
	alt.PSK = []byte("another pre-shared key, longer")
	p = multiPeers(t, nil, []*PeerConfig{&alt})
	p.cfgA.LocalID, p.cfgA.PSK = alt.RemoteID, alt.PSK
	sa, err := p.a.Initiate("to-b")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	if l := p.b.List(); len(l) != 1 || l[0].Name != "alt" || len(l[0].Children) != 1 || l[0].Children[0].Name != "alt" {
		t.Fatalf("B's IKE SAs: %+v", l)
	}
	if p.b.Stats.AuthFailed.Load() != 0 {
		t.Errorf("%d authentication failures", p.b.Stats.AuthFailed.Load())
	}
}

// chooseChild prefers a connection that takes the proposed selectors whole
// over an earlier one that would narrow them, and names the right refusal.
func TestChooseChild(t *testing.T) {
	ts := func(s string) []TrafficSelector {
		return []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix(s))}
	}
	conn := func(name, esp, local, remote string) *PeerConfig {
		return &PeerConfig{Name: name, ESP: mustParse(t, ProtoESP, esp), LocalTS: ts(local), RemoteTS: ts(remote)}
	}
	narrowing := conn("narrowing", "aes128gcm16", "203.0.113.0/26", "198.51.100.0/24")
	exact := conn("exact", "aes128gcm16", "203.0.113.0/24", "198.51.100.0/24")
	gcm256 := conn("gcm256", "aes256gcm16", "203.0.113.0/24", "198.51.100.0/24")
	offer := mustParse(t, ProtoESP, "aes128gcm16")
	offer[0].SPI = []byte{1, 2, 3, 4}
	for _, c := range []struct {
		cfgs     []*PeerConfig
		tsi, tsr string
		want     string
		refuse   NotifyType
		wantTSr  string
	}{
		{[]*PeerConfig{narrowing, exact}, "198.51.100.0/24", "203.0.113.0/24", "exact", 0, "203.0.113.0/24"},
		{[]*PeerConfig{narrowing}, "198.51.100.0/24", "203.0.113.0/24", "narrowing", 0, "203.0.113.0/26"},
		{[]*PeerConfig{gcm256, narrowing}, "198.51.100.0/24", "203.0.113.0/24", "narrowing", 0, "203.0.113.0/26"},
		{[]*PeerConfig{gcm256}, "198.51.100.0/24", "203.0.113.0/24", "", NO_PROPOSAL_CHOSEN, ""},
		{[]*PeerConfig{gcm256, exact}, "192.0.2.0/24", "203.0.113.0/24", "", TS_UNACCEPTABLE, ""},
	} {
		ch, n := chooseChild(c.cfgs, offer, ts(c.tsi), ts(c.tsr), false)
		got := ""
		if ch.cfg != nil {
			got = ch.cfg.Name
		}
		if got != c.want || n != c.refuse {
			t.Errorf("%s === %s: chose %q refusing %v, want %q refusing %v", c.tsi, c.tsr, got, n, c.want, c.refuse)
			continue
		}
		if c.wantTSr != "" && !slices.Equal(ch.tsr, ts(c.wantTSr)) {
			t.Errorf("%s === %s: our side narrowed to %v, want %s", c.tsi, c.tsr, ch.tsr, c.wantTSr)
		}
	}
}

// Two connections from one peer address with different IKE proposals: the
// IKE_SA_INIT's proposals pick the one that accepts them.
func TestResponderPicksConnectionByIKEProposal(t *testing.T) {
	p := multiPeers(t, nil, nil)
	other := *p.cfgB
	other.Name = "cbc"
	other.IKE = mustParse(t, ProtoIKE, "aes256-sha256-ecp256")
	p = multiPeers(t, nil, []*PeerConfig{&other})
	p.cfgA.IKE = other.IKE
	sa, err := p.a.Initiate("to-b")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	if l := p.b.List(); len(l) != 1 || l[0].Name != "cbc" || l[0].Children[0].Name != "cbc" {
		t.Fatalf("B's IKE SAs: %+v", l)
	}
	if n := p.b.Stats.NoProposal.Load(); n != 0 {
		t.Errorf("%d proposals refused", n)
	}
}
