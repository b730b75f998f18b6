package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/espx/espx/crypto"
	"github.com/espx/espx/dataplane/internal/fakeport"
	"github.com/espx/espx/spd"
)

// Two gateways in memory, each one worker on fake ports:
//
//	hostA (198.51.100.0/24, 2001:db8:1::/48) - [1] gwA [2] - 192.0.2.1/2001:db8::1
//	  ~ 192.0.2.2/2001:db8::2 - [2] gwB [1] - hostB (203.0.113.0/24, 2001:db8:2::/48)
//
// Interface 1 is protected, 2 unprotected, on both.
const (
	ifProt   = 1
	ifUnprot = 2
)

var (
	macHostA, macGwAProt, macGwAUnprot = mac(0x0a), mac(0xa1), mac(0xa2)
	macHostB, macGwBProt, macGwBUnprot = mac(0x0b), mac(0xb1), mac(0xb2)
	netA4, netB4                       = netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")
	netA6, netB6                       = netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("2001:db8:2::/48")
	gwAProt4, gwBProt4                 = netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")
	gwAProt6, gwBProt6                 = netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:2::1")
)

type testGW struct {
	dp           *Dataplane
	w            *Worker
	prot, unprot *fakeport.Port
	rt           *fakeRouter
}

func newTestGW(tb testing.TB, cfg Config, local, remote [2]netip.Prefix, protSrc [2]netip.Addr, hostMAC, protMAC, unprotMAC, peerMAC [6]byte, peerOuter [2]netip.Addr) *testGW {
	tb.Helper()
	dp, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	u := fakeport.NewUMEM(tb, 4096)
	g := &testGW{dp: dp, prot: &fakeport.Port{Index: ifProt, Mem: u}, unprot: &fakeport.Port{Index: ifUnprot, Mem: u}}
	toHost := NextHop{Ifindex: ifProt, SrcMAC: protMAC, DstMAC: hostMAC, MTU: 1500}
	toPeer := NextHop{Ifindex: ifUnprot, SrcMAC: unprotMAC, DstMAC: peerMAC, MTU: 1500}
	g.rt = &fakeRouter{src: map[int][2]netip.Addr{ifProt: protSrc}}
	for f := range 2 {
		g.rt.routes = append(g.rt.routes,
			fakeRoute{dst: local[f], nh: toHost},
			fakeRoute{dst: netip.PrefixFrom(peerOuter[f], peerOuter[f].BitLen()), nh: toPeer},
			fakeRoute{dst: remote[f], nh: NextHop{Ifindex: ifUnprot, SrcMAC: unprotMAC, DstMAC: peerMAC, MTU: 1500, Addr: peerOuter[f]}})
	}
	g.w, err = dp.AddWorker(WorkerConfig{Protected: g.prot, Unprotected: g.unprot, Mem: u, Router: g.rt, CPU: -1})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// poll runs the worker until it has nothing more to do.
func (g *testGW) poll() {
	for g.w.Poll() > 0 {
	}
}

type testPair struct{ a, b *testGW }

func gcm128(n int) crypto.Config {
	k := seqBytes(20)
	k[0] = byte(n)
	return crypto.Config{Encr: crypto.ENCR_AES_GCM_16, EncrKey: k}
}

// newTestPair builds the two gateways with protect policies between the
// host networks of both families (request IDs 1 for IPv4, 2 for IPv6
// inner traffic) and, unless noSAs, the SAs: SPI 0x1000+reqid from A to B,
// 0x2000+reqid back, outer family as given.
func newTestPair(tb testing.TB, cfg Config, outer6, noSAs bool) *testPair {
	tb.Helper()
	outerA, outerB := [2]netip.Addr{gw4a, gw6a}, [2]netip.Addr{gw4b, gw6b}
	p := &testPair{
		a: newTestGW(tb, cfg, [2]netip.Prefix{netA4, netA6}, [2]netip.Prefix{netB4, netB6}, [2]netip.Addr{gwAProt4, gwAProt6},
			macHostA, macGwAProt, macGwAUnprot, macGwBUnprot, outerB),
		b: newTestGW(tb, cfg, [2]netip.Prefix{netB4, netB6}, [2]netip.Prefix{netA4, netA6}, [2]netip.Addr{gwBProt4, gwBProt6},
			macHostB, macGwBProt, macGwBUnprot, macGwAUnprot, outerA),
	}
	fam := 0
	if outer6 {
		fam = 1
	}
	for reqid, nets := range map[uint64][2]netip.Prefix{1: {netA4, netB4}, 2: {netA6, netB6}} {
		for _, g := range []struct {
			gw            *testGW
			local, remote netip.Prefix
			src, dst      netip.Addr
			out, in       uint32
		}{
			{p.a, nets[0], nets[1], outerA[fam], outerB[fam], 0x1000, 0x2000},
			{p.b, nets[1], nets[0], outerB[fam], outerA[fam], 0x2000, 0x1000},
		} {
			for _, dir := range []spd.Dir{spd.DirOut, spd.DirFwd} {
				if _, err := g.gw.dp.AddPolicy(spd.Policy{Dir: dir, Selector: spd.Selector{Local: g.local, Remote: g.remote},
					Priority: 100, Action: spd.Protect, SA: reqid, Trap: true}); err != nil {
					tb.Fatal(err)
				}
			}
			if noSAs {
				continue
			}
			spiOut, spiIn := g.out+uint32(reqid), g.in+uint32(reqid)
			if err := g.gw.dp.AddSA(SA{SAConfig: SAConfig{SPI: spiIn, ReqID: reqid, Transform: gcm128(int(spiIn)), Src: g.dst, Dst: g.src, ReplayWindow: 64}, Inbound: true}); err != nil {
				tb.Fatal(err)
			}
			if err := g.gw.dp.AddSA(SA{SAConfig: SAConfig{SPI: spiOut, ReqID: reqid, Transform: gcm128(int(spiOut)), Src: g.src, Dst: g.dst}}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return p
}

// aToB sends IP packets from hostA through gwA and gwB and returns what
// reaches hostB's link, and the ESP frames in between.
func (p *testPair) aToB(tb testing.TB, pkts ...[]byte) (delivered, wire [][]byte) {
	tb.Helper()
	for _, ip := range pkts {
		p.a.prot.Queue(tb, ether(macGwAProt, macHostA, ip))
	}
	p.a.poll()
	wire = p.a.unprot.Take()
	p.b.unprot.Queue(tb, wire...)
	p.b.poll()
	return p.b.prot.Take(), wire
}

func checkEther(tb testing.TB, f []byte, dst, src [6]byte) []byte {
	tb.Helper()
	if !bytes.Equal(f[:6], dst[:]) || !bytes.Equal(f[6:12], src[:]) {
		tb.Fatalf("ethernet %x -> %x, want %x -> %x", f[6:12], f[:6], src, dst)
	}
	return f[ethLen:]
}

// withTTL is p with the TTL or hop limit lowered by n, checksum fixed.
func withTTL(p []byte, n int) []byte {
	q := append([]byte(nil), p...)
	for range n {
		decTTL(q)
	}
	return q
}

func TestWorkerTunnel(t *testing.T) {
	for _, outer6 := range []bool{false, true} {
		p := newTestPair(t, Config{}, outer6, false)
		for _, c := range []struct {
			name     string
			src, dst netip.Addr
		}{
			{"4in", netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20")},
			{"6in", netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:2::20")},
		} {
			name := c.name + "4"
			if outer6 {
				name = c.name + "6"
			}
			t.Run(name, func(t *testing.T) {
				var pkts [][]byte
				for i := range 10 {
					pkts = append(pkts, udpPacket(c.src, c.dst, 10+100*i, 0))
				}
				got, wire := p.aToB(t, pkts...)
				if len(wire) != len(pkts) || len(got) != len(pkts) {
					t.Fatalf("%d on the wire, %d delivered, want %d", len(wire), len(got), len(pkts))
				}
				for i, w := range wire {
					ip := checkEther(t, w, macGwBUnprot, macGwAUnprot)
					var in Inbound
					f := frameOf(ip)
					if d := ParseInbound(&f, &in); d != DropNone {
						t.Fatalf("wire packet %d: %v", i, d)
					}
				}
				for i, g := range got {
					ip := checkEther(t, g, macHostB, macGwBProt)
					// Forwarded by two routers: TTL down by two.
					if want := withTTL(pkts[i], 2); !bytes.Equal(ip, want) {
						t.Fatalf("packet %d:\n got %x\nwant %x", i, ip, want)
					}
				}
			})
		}
	}
}

func TestWorkerReplayedESPDropped(t *testing.T) {
	p := newTestPair(t, Config{}, false, false)
	pkt := udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), 100, 0)
	got, wire := p.aToB(t, pkt, pkt)
	if len(got) != 2 {
		t.Fatalf("%d delivered", len(got))
	}
	p.b.unprot.Queue(t, wire...)
	p.b.poll()
	if n := len(p.b.prot.Take()); n != 0 {
		t.Fatalf("replayed packets delivered: %d", n)
	}
	if n := p.b.w.C.Dropped(DropReplay); n != 2 {
		t.Fatalf("replay drops %d, want 2", n)
	}
	// A forged packet: a new sequence number (Ethernet, IPv4, SPI, then
	// the sequence number), so that the replay check passes, and the ICV
	// does not verify.
	forged := append([]byte(nil), wire[0]...)
	binary.BigEndian.PutUint32(forged[ethLen+ipv4MinLen+4:], 100)
	p.b.unprot.Queue(t, forged)
	p.b.poll()
	// The SA counts its own drops too, as XFRM's state statistics do.
	info, err := p.b.dp.QuerySA(0x1001, true)
	if err != nil {
		t.Fatal(err)
	}
	if info.Replay != 2 || info.AuthFailed != 1 || info.TooOld != 0 || info.Packets != 2 {
		t.Errorf("SA %#x: %d packets, %d replays, %d failed ICVs, %d too old; want 2, 2, 1, 0", info.SPI, info.Packets, info.Replay, info.AuthFailed, info.TooOld)
	}
	checkBalance(t, p.a)
	checkBalance(t, p.b)
}

// checkBalance checks that every frame a gateway received is accounted
// for: sent, dropped for a reason, or held for an acquire. An ICMP error
// is a packet the worker made, sent in place of one it dropped.
func checkBalance(tb testing.TB, g *testGW) {
	tb.Helper()
	s := g.w.C.Snapshot()
	var drops uint64
	for _, d := range s.Drops {
		drops += d
	}
	in := s.RxPackets[0] + s.RxPackets[1] + s.HeldSent + s.ICMPSent + s.NeighResumed + s.Fragments
	out := s.TxPackets[0] + s.TxPackets[1]
	held := s.Acquires + s.AcquiresSuppressed - s.Drops[DropAcquire] + s.NeighHeld
	if in != out+drops+held {
		tb.Fatalf("in %d (rx %v, held sent %d) != out %d (tx %v) + drops %d + held %d", in, s.RxPackets, s.HeldSent, out, s.TxPackets, drops, held)
	}
}

func TestWorkerPolicies(t *testing.T) {
	p := newTestPair(t, Config{DefaultBypass: true}, false, false)
	other := netip.MustParsePrefix("198.51.100.128/25")
	// Inside the protect policy's selector, and ahead of it by priority.
	if _, err := p.a.dp.AddPolicy(spd.Policy{Dir: spd.DirOut, Selector: spd.Selector{Local: other, Remote: netB4}, Action: spd.Discard}); err != nil {
		t.Fatal(err)
	}
	bypass := netip.MustParsePrefix("198.51.100.64/26")
	if _, err := p.a.dp.AddPolicy(spd.Policy{Dir: spd.DirOut, Selector: spd.Selector{Local: bypass, Remote: netB4, Proto: protoUDP}, Action: spd.Bypass}); err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddr("203.0.113.20")
	discarded := udpPacket(netip.MustParseAddr("198.51.100.200"), dst, 50, 0)
	bypassed := udpPacket(netip.MustParseAddr("198.51.100.70"), dst, 50, 0)
	p.a.prot.Queue(t, ether(macGwAProt, macHostA, discarded), ether(macGwAProt, macHostA, bypassed))
	p.a.poll()
	sent := p.a.unprot.Take()
	if len(sent) != 1 {
		t.Fatalf("%d sent, want the bypassed one", len(sent))
	}
	if ip := checkEther(t, sent[0], macGwBUnprot, macGwAUnprot); !bytes.Equal(ip, withTTL(bypassed, 1)) {
		t.Fatalf("bypassed packet changed:\n got %x\nwant %x", ip, withTTL(bypassed, 1))
	}
	if n := p.a.w.C.Dropped(DropPolicyBlock); n != 1 {
		t.Fatalf("policy_block %d, want 1", n)
	}

	// At gwB, a clear packet between the protected networks is refused:
	// a protect policy covers it. Others pass by default, to either side.
	p.b.unprot.Queue(t, sent[0],
		ether(macGwBUnprot, macGwAUnprot, udpPacket(netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("203.0.113.250"), 10, 0)),
		ether(macGwBUnprot, macGwAUnprot, udpPacket(netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("192.0.2.1"), 10, 0)))
	p.b.poll()
	if n := p.b.w.C.Dropped(DropNoPolicy); n != 1 {
		t.Fatalf("no_policy %d, want 1", n)
	}
	if a, b := len(p.b.prot.Take()), len(p.b.unprot.Take()); a != 1 || b != 1 {
		t.Fatalf("%d, %d clear packets forwarded by default to each side, want 1, 1", a, b)
	}

	// Without the default bypass, a packet that matches nothing is
	// discarded.
	q := newTestPair(t, Config{}, false, false)
	q.a.prot.Queue(t, ether(macGwAProt, macHostA, udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("192.0.2.77"), 10, 0)))
	q.a.poll()
	if n := q.a.w.C.Dropped(DropNoPolicy); n != 1 || len(q.a.unprot.Take()) != 0 {
		t.Fatalf("no_policy %d, want 1", n)
	}
	checkBalance(t, p.a)
	checkBalance(t, p.b)
	checkBalance(t, q.a)
}

func TestWorkerTmplMismatch(t *testing.T) {
	// gwA sends a packet its policy allows but gwB's fwd policy for the SA
	// does not cover: gwB decrypts it and drops it.
	p := newTestPair(t, Config{}, false, false)
	wide := netip.MustParsePrefix("198.51.0.0/16")
	if _, err := p.a.dp.AddPolicy(spd.Policy{Dir: spd.DirOut, Priority: 0, Selector: spd.Selector{Local: wide, Remote: netB4}, Action: spd.Protect, SA: 1}); err != nil {
		t.Fatal(err)
	}
	got, wire := p.aToB(t, udpPacket(netip.MustParseAddr("198.51.7.7"), netip.MustParseAddr("203.0.113.20"), 10, 0))
	if len(wire) != 1 || len(got) != 0 {
		t.Fatalf("%d on the wire, %d delivered; want 1, 0", len(wire), len(got))
	}
	if n := p.b.w.C.Dropped(DropTmplMismatch); n != 1 {
		t.Fatalf("tmpl_mismatch %d", n)
	}
}

func TestWorkerAcquire(t *testing.T) {
	cfg := Config{Acquire: AcquireConfig{Hold: 4}}
	p := newTestPair(t, cfg, false, true)
	src, dst := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20")
	var pkts [][]byte
	for i := range 20 {
		pkts = append(pkts, udpPacket(src, dst, 10+i, 0))
	}
	for _, ip := range pkts {
		p.a.prot.Queue(t, ether(macGwAProt, macHostA, ip))
	}
	p.a.poll()
	if n := len(p.a.unprot.Take()); n != 0 {
		t.Fatalf("%d sent without an SA", n)
	}
	var ev []Event
	for len(p.a.dp.Events()) > 0 {
		ev = append(ev, <-p.a.dp.Events())
	}
	if len(ev) != 1 || ev[0].Kind != EventAcquire || ev[0].Policy.SA != 1 || ev[0].Packet.Src != src || ev[0].Packet.Dst != dst {
		t.Fatalf("events %+v, want one acquire for reqid 1 with the packet's addresses", ev)
	}
	s := p.a.w.C.Snapshot()
	if s.Acquires != 1 || s.AcquiresSuppressed != 19 || s.Drops[DropAcquire] != 16 {
		t.Fatalf("acquires %d suppressed %d dropped %d; want 1, 19, 16", s.Acquires, s.AcquiresSuppressed, s.Drops[DropAcquire])
	}
	// The control plane installs the SAs: the four held packets go out
	// first, in order, then new traffic.
	if err := p.b.dp.AddSA(SA{SAConfig: SAConfig{SPI: 0x1001, ReqID: 1, Transform: gcm128(0x1001), Src: gw4a, Dst: gw4b, ReplayWindow: 64}, Inbound: true}); err != nil {
		t.Fatal(err)
	}
	if err := p.a.dp.AddSA(SA{SAConfig: SAConfig{SPI: 0x1001, ReqID: 1, Transform: gcm128(0x1001), Src: gw4a, Dst: gw4b}}); err != nil {
		t.Fatal(err)
	}
	if p.a.dp.PendingAcquires() != 0 {
		t.Fatal("acquire still pending after the SA came")
	}
	got, _ := p.aToB(t, pkts[19])
	if len(got) != 5 {
		t.Fatalf("%d delivered, want the 4 held and 1 new", len(got))
	}
	for i, g := range got {
		want := pkts[i]
		if i == 4 {
			want = pkts[19]
		}
		if ip := checkEther(t, g, macHostB, macGwBProt); !bytes.Equal(ip, withTTL(want, 2)) {
			t.Fatalf("packet %d is not the one held", i)
		}
	}
	checkBalance(t, p.a)
	if p.a.dp.acq.held != 0 {
		t.Fatalf("%d hold buffers not returned", p.a.dp.acq.held)
	}
}

func TestAcquireTimeoutAndRate(t *testing.T) {
	cfg := Config{Acquire: AcquireConfig{Hold: 2, Timeout: time.Second, Rate: 1, Burst: 2}}
	dp, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []spd.ID
	for i := range 4 {
		id, err := dp.AddPolicy(spd.Policy{Dir: spd.DirOut, Selector: spd.Selector{
			Local: netA4, Remote: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(16 * i)}), 28)}, Action: spd.Protect, SA: uint64(10 + i), Trap: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	t0 := time.Unix(1000, 0)
	hit := func(i int, at time.Time) acquireResult {
		k := spd.Key{Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.AddrFrom4([4]byte{203, 0, 113, byte(16*i + 1)}), Proto: protoUDP}
		e := dp.SPD.Lookup(spd.DirOut, &k)
		if e == nil || e.ID() != ids[i] {
			t.Fatalf("lookup %v: %v", k, e)
		}
		return dp.acq.hit(0, e, &k, []byte{0x45}, at)
	}
	if r := hit(0, t0); r != acqRaised {
		t.Fatalf("first hit: %v", r)
	}
	if r := hit(0, t0); r != acqHeld {
		t.Fatalf("second hit: %v", r)
	}
	if r := hit(0, t0); r != acqDropped {
		t.Fatalf("third hit past Hold: %v", r)
	}
	if r := hit(1, t0); r != acqRaised {
		t.Fatalf("second policy: %v", r)
	}
	// The burst of 2 is spent: a third policy waits for a token.
	if r := hit(2, t0); r != acqDropped {
		t.Fatalf("rate limit: %v", r)
	}
	if r := hit(2, t0.Add(1100*time.Millisecond)); r != acqRaised {
		t.Fatalf("after a second: %v", r)
	}
	// Policy 0's acquire times out: its held packets go, and the next
	// packet raises a new one.
	dp.acq.expire(t0.Add(1500 * time.Millisecond))
	if dp.heldExpired.Load() != 2+1 {
		t.Fatalf("held expired %d, want 3", dp.heldExpired.Load())
	}
	if r := hit(0, t0.Add(3*time.Second)); r != acqRaised {
		t.Fatalf("after the timeout: %v", r)
	}
	n := 0
	for len(dp.Events()) > 0 {
		if e := <-dp.Events(); e.Kind == EventAcquire {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("%d acquires raised, want 4", n)
	}
}

// icmpChecksumOK verifies the ICMP or ICMPv6 checksum of an IP packet the
// plain way, word by word.
func icmpChecksumOK(p []byte) bool {
	var acc uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			acc += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			acc += uint32(b[len(b)-1]) << 8
		}
	}
	var body []byte
	if p[0]>>4 == 4 {
		body = p[20:]
	} else {
		body = p[40:]
		add(p[8:40])
		acc += uint32(len(body)) + protoICMPv6
	}
	add(body)
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return acc == 0xffff
}

func TestWorkerICMP(t *testing.T) {
	p := newTestPair(t, Config{}, false, false)
	for _, c := range []struct {
		name     string
		pkt      []byte
		typ      uint8
		code     uint8
		mtu      int
		from, to netip.Addr
		drop     Drop
	}{
		{"ttl4", withTTL(udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), 10, 0), 63), 11, 0, 0, gwAProt4, netip.MustParseAddr("198.51.100.10"), DropTTL},
		{"ttl6", withTTL(udpPacket(netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:2::20"), 10, 0), 63), 3, 0, 0, gwAProt6, netip.MustParseAddr("2001:db8:1::10"), DropTTL},
		// 1500 - 20 outer - 8 ESP - 8 IV - 16 ICV - up to 17 trailer.
		{"big4", udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), 1472, 0), 3, 4, 1438, gwAProt4, netip.MustParseAddr("198.51.100.10"), DropTooBig},
		{"big6", udpPacket(netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:2::20"), 1452, 0), 2, 0, 1438, gwAProt6, netip.MustParseAddr("2001:db8:1::10"), DropTooBig},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := p.a.w.C.Dropped(c.drop)
			p.a.prot.Queue(t, ether(macGwAProt, macHostA, c.pkt))
			p.a.poll()
			if n := len(p.a.unprot.Take()); n != 0 {
				t.Fatalf("%d sent to the peer", n)
			}
			back := p.a.prot.Take()
			if len(back) != 1 {
				t.Fatalf("%d ICMP errors, want 1", len(back))
			}
			ip := checkEther(t, back[0], macHostA, macGwAProt)
			var k spd.Key
			if d := flowKey(ip, &k); d != DropNone {
				t.Fatal(d)
			}
			if k.Src != c.from || k.Dst != c.to || k.SrcPort != uint16(c.typ) || k.DstPort != uint16(c.code) {
				t.Fatalf("ICMP %v -> %v type %d code %d, want %v -> %v %d %d", k.Src, k.Dst, k.SrcPort, k.DstPort, c.from, c.to, c.typ, c.code)
			}
			hl := 20
			if ip[0]>>4 == 6 {
				hl = 40
			}
			icmp := ip[hl:]
			mtu := int(binary.BigEndian.Uint32(icmp[4:]))
			if c.mtu != 0 && mtu != c.mtu {
				t.Fatalf("MTU %d, want %d", mtu, c.mtu)
			}
			if !icmpChecksumOK(ip) {
				t.Fatal("bad ICMP checksum")
			}
			if !bytes.HasPrefix(c.pkt, icmp[8:]) || len(icmp[8:]) < 28 {
				t.Fatal("ICMP does not quote the packet")
			}
			if p.a.w.C.Dropped(c.drop) != before+1 {
				t.Fatalf("%v not counted", c.drop)
			}
			checkBalance(t, p.a)
		})
	}
	// The largest packet that fits goes through.
	ok := udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), 1438-28, 0)
	if got, _ := p.aToB(t, ok); len(got) != 1 {
		t.Fatal("a packet of the reported MTU did not pass")
	}
}

func TestWorkerRouteFailures(t *testing.T) {
	p := newTestPair(t, Config{}, false, false)
	// The peer's address unresolved: the packets wait (three per next hop,
	// the rest dropped) while the kernel is asked to resolve it, and go
	// once it has.
	setResolved := func(g *testGW, addr netip.Addr, ok bool) {
		for i := range g.rt.routes {
			if g.rt.routes[i].dst.Addr() == addr {
				g.rt.routes[i].unresolved = !ok
			}
		}
	}
	setResolved(p.a, gw4b, false)
	pkt := udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), 10, 0)
	if _, wire := p.aToB(t, pkt, pkt, pkt, pkt); len(wire) != 0 {
		t.Fatal("sent to an unresolved next hop")
	}
	if p.a.w.C.Dropped(DropNoNeighbour) != 1 || p.a.rt.resolves == 0 || len(p.a.w.nheld) != 3 {
		t.Fatalf("no_neighbour %d, resolves %d, waiting %d; want 1, some, 3", p.a.w.C.Dropped(DropNoNeighbour), p.a.rt.resolves, len(p.a.w.nheld))
	}
	p.a.poll()
	if len(p.a.unprot.Take()) != 0 {
		t.Fatal("sent while still unresolved")
	}
	setResolved(p.a, gw4b, true)
	if got, _ := p.aToB(t); len(got) != 3 {
		t.Fatalf("%d of the 3 waiting packets delivered once resolved", len(got))
	}
	// Decrypted packets wait for the host's address the same way, and go
	// after a second without it.
	setResolved(p.b, netip.MustParseAddr("203.0.113.20"), false)
	for i := range p.b.rt.routes {
		if p.b.rt.routes[i].dst == netB4 {
			p.b.rt.routes[i].unresolved = true
		}
	}
	if got, _ := p.aToB(t, pkt); len(got) != 0 || len(p.b.w.nheld) != 1 {
		t.Fatalf("delivered %d, waiting %d; want 0, 1", len(got), len(p.b.w.nheld))
	}
	p.b.w.nheld[0].since -= 2 * neighHoldTime
	p.b.poll()
	if len(p.b.w.nheld) != 0 || p.b.w.C.Dropped(DropNoNeighbour) != 1 {
		t.Fatalf("waiting %d, no_neighbour %d after the hold time", len(p.b.w.nheld), p.b.w.C.Dropped(DropNoNeighbour))
	}
	checkBalance(t, p.b)
	// A full TX ring drops and counts, and frees the frame.
	p.a.rt.routes = p.a.rt.routes[:0]
	p.a.prot.Queue(t, ether(macGwAProt, macHostA, pkt))
	p.a.poll()
	if p.a.w.C.Dropped(DropNoRoute) != 1 {
		t.Fatal("no_route not counted")
	}
	q := newTestPair(t, Config{}, false, false)
	q.a.unprot.TxFull = true
	q.a.prot.Queue(t, ether(macGwAProt, macHostA, pkt))
	q.a.poll()
	if q.a.w.C.Dropped(DropTxFull) != 1 {
		t.Fatal("tx_full not counted")
	}
	// Not IP, and an Ethernet type that disagrees with the IP version.
	frame := ether(macGwAProt, macHostA, pkt)
	binary.BigEndian.PutUint16(frame[ethTypeOff:], ethTypeIPv6)
	arp := append([]byte(nil), frame...)
	binary.BigEndian.PutUint16(arp[ethTypeOff:], 0x0806)
	q.a.prot.Queue(t, frame, arp, frame[:20])
	q.a.poll()
	if q.a.w.C.Dropped(DropNotIP) != 2 || q.a.w.C.Dropped(DropHdrError) != 1 {
		t.Fatalf("not_ip %d hdr_error %d", q.a.w.C.Dropped(DropNotIP), q.a.w.C.Dropped(DropHdrError))
	}
	checkBalance(t, p.a)
	checkBalance(t, q.a)
	for _, g := range []*testGW{p.a, p.b, q.a, q.b} {
		if a := g.prot.Mem.Accounting(); a.Free != a.Frames {
			t.Fatalf("frames leaked: %+v", a)
		}
	}
}

func TestWorkerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	p := newTestPair(t, Config{}, false, false)
	pkt := ether(macGwAProt, macHostA, udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), 100, 0))
	p.a.prot.Gen = pkt
	p.a.unprot.Discard = true
	p.a.w.Poll()
	if n := testing.AllocsPerRun(100, func() { p.a.w.Poll() }); n != 0 {
		t.Fatalf("%v allocations per batch", n)
	}
}

func TestWorkerFragmentsBeforeEncap(t *testing.T) {
	p := newTestPair(t, Config{}, false, false)
	// As large as the test's 2048-byte frames hold.
	pkt := udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), 1650, 0)
	putUint16(pkt[ipv4FlagsOff:], 0) // DF clear
	ipv4(pkt).setChecksum()
	got, wire := p.aToB(t, pkt)
	// 1678 bytes into pieces of at most 1438: 1416 + 242 of payload.
	if len(wire) != 2 || len(got) != 2 {
		t.Fatalf("%d ESP packets, %d delivered; want 2 fragments", len(wire), len(got))
	}
	var payload []byte
	for i, g := range got {
		ip := checkEther(t, g, macHostB, macGwBProt)
		h := ipv4(ip)
		if fold(sum(ip[:20], 0)) != 0xffff {
			t.Fatalf("fragment %d: bad header checksum", i)
		}
		off, mf := int(h.flagsFrag()&ipv4FragMask)*8, h.flagsFrag()&ipv4FlagMF != 0
		if off != len(payload) || mf != (i == 0) || len(ip) > 1438 || ip[ipv4TTLOff] != 62 {
			t.Fatalf("fragment %d: offset %d MF %v length %d TTL %d", i, off, mf, len(ip), ip[ipv4TTLOff])
		}
		payload = append(payload, ip[20:h.totalLen()]...)
	}
	if !bytes.Equal(payload, pkt[20:]) {
		t.Fatal("fragments do not reassemble to the packet")
	}
	s := p.a.w.C.Snapshot()
	if s.Fragments != 1 || s.Drops[DropTooBig] != 0 {
		t.Fatalf("fragments %d, too_big %d", s.Fragments, s.Drops[DropTooBig])
	}
	checkBalance(t, p.a)
	checkBalance(t, p.b)
}

// The per-core SPD counters tell hashed answers from listed ones: with
// IPv4 thresholds of /16 the /24 policies are hashed, and with IPv6's
// default of /128 the /48 ones are listed.
func TestWorkerSPDCounters(t *testing.T) {
	th := spd.DefaultThresholds()
	th.V4Local, th.V4Remote = 16, 16
	p := newTestPair(t, Config{Thresholds: th}, false, false)
	var pkts [][]byte
	for i := range 7 {
		pkts = append(pkts, udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), 10+i, 0))
	}
	for i := range 3 {
		pkts = append(pkts, udpPacket(netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:2::20"), 10+i, 0))
	}
	if got, _ := p.aToB(t, pkts...); len(got) != len(pkts) {
		t.Fatalf("%d delivered, want %d", len(got), len(pkts))
	}
	// gwA looked the packets up outbound, gwB inbound after decryption.
	for _, g := range []*testGW{p.a, p.b} {
		s := g.w.C.Snapshot()
		if s.SPDLookups != 10 || s.SPDHashedHits != 7 || s.SPDListHits != 3 || s.SPDListScans != 3 || s.SPDListEntries != 3 {
			t.Errorf("lookups %d, hashed %d, listed %d, list scans %d, list entries %d; want 10, 7, 3, 3, 3",
				s.SPDLookups, s.SPDHashedHits, s.SPDListHits, s.SPDListScans, s.SPDListEntries)
		}
	}
}
