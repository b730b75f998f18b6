package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/espx/espx/crypto"
)

// Room around a packet in test frames, like a UMEM chunk's.
const (
	testHeadroom = 256
	testTailroom = 256
)

// transforms are one of each ESP transform kind, keyed by a name for
// subtests and benchmarks.
var transforms = []struct {
	name string
	c    crypto.Config
}{
	{"aes128gcm16", crypto.Config{Encr: crypto.ENCR_AES_GCM_16, EncrKey: seqBytes(20)}},
	{"aes256gcm16", crypto.Config{Encr: crypto.ENCR_AES_GCM_16, EncrKey: seqBytes(36)}},
	{"chacha20poly1305", crypto.Config{Encr: crypto.ENCR_CHACHA20_POLY1305, EncrKey: seqBytes(36)}},
	{"aes128gmac", crypto.Config{Encr: crypto.ENCR_NULL_AUTH_AES_GMAC, EncrKey: seqBytes(20)}},
	{"aes128-sha256", crypto.Config{Encr: crypto.ENCR_AES_CBC, EncrKey: seqBytes(16), Integ: crypto.AUTH_HMAC_SHA2_256_128, IntegKey: seqBytes(32)}},
	{"aes256-sha512", crypto.Config{Encr: crypto.ENCR_AES_CBC, EncrKey: seqBytes(32), Integ: crypto.AUTH_HMAC_SHA2_512_256, IntegKey: seqBytes(64)}},
	{"null-sha384", crypto.Config{Encr: crypto.ENCR_NULL, Integ: crypto.AUTH_HMAC_SHA2_384_192, IntegKey: seqBytes(48)}},
}

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(n + 3*i)
	}
	return b
}

var (
	gw4a, gw4b = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	gw6a, gw6b = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	host4a     = netip.MustParseAddr("198.51.100.10")
	host4b     = netip.MustParseAddr("203.0.113.20")
	host6a     = netip.MustParseAddr("2001:db8:1::10")
	host6b     = netip.MustParseAddr("2001:db8:2::20")
)

// udpPacket builds an IPv4 or IPv6 UDP packet with n payload bytes.
func udpPacket(src, dst netip.Addr, n int, tos uint8) []byte {
	payload := make([]byte, udpLen+n)
	putPorts(payload, 5000, 6000)
	putUint16(payload[udpLenOff:], uint16(len(payload)))
	for i := range n {
		payload[udpLen+i] = byte(i)
	}
	if src.Is4() {
		p := make([]byte, ipv4MinLen, ipv4MinLen+len(payload))
		h := ipv4(p)
		h[0] = 0x45
		h[ipv4TOSOff] = tos
		h.setTotalLen(ipv4MinLen + len(payload))
		putUint16(h[ipv4FlagsOff:], ipv4FlagDF)
		h[ipv4TTLOff] = 64
		h[ipv4ProtoOff] = protoUDP
		s, d := src.As4(), dst.As4()
		copy(h[ipv4SrcOff:], s[:])
		copy(h[ipv4DstOff:], d[:])
		h.setChecksum()
		return append(p, payload...)
	}
	p := make([]byte, ipv6Len, ipv6Len+len(payload))
	h := ipv6(p)
	h.setTrafficClass(tos)
	h.setPayloadLen(len(payload))
	h[ipv6NextOff] = protoUDP
	h[ipv6HopOff] = 64
	s, d := src.As16(), dst.As16()
	copy(h[ipv6SrcOff:], s[:])
	copy(h[ipv6DstOff:], d[:])
	p = append(p, payload...)
	udpChecksum6(p, ipv6Len, sum(p[ipv6SrcOff:ipv6DstOff+16], 0))
	return p
}

// frameOf puts a packet into a fresh frame with test room around it.
func frameOf(p []byte) Frame {
	buf := make([]byte, testHeadroom+len(p)+testTailroom)
	copy(buf[testHeadroom:], p)
	return Frame{Buf: buf, Off: testHeadroom, Len: len(p)}
}

// saPair builds the outbound SA of one gateway and the matching inbound SA
// of the other.
func saPair(tb testing.TB, c SAConfig) (*OutboundSA, *InboundSA) {
	tb.Helper()
	out, err := NewOutboundSA(c)
	if err != nil {
		tb.Fatal(err)
	}
	c.Src, c.Dst = c.Dst, c.Src
	c.SrcPort, c.DstPort = c.DstPort, c.SrcPort
	in, err := NewInboundSA(c)
	if err != nil {
		tb.Fatal(err)
	}
	return out, in
}

type rtCase struct {
	name     string
	mode     Mode
	outer    [2]netip.Addr
	inner    [2]netip.Addr
	encap    bool
	esn      bool
	tfc      int
	firstSeq uint64
}

func rtCases() []rtCase {
	var cs []rtCase
	for _, mode := range []Mode{ModeTunnel, ModeTransport} {
		for _, o := range [][2]netip.Addr{{gw4a, gw4b}, {gw6a, gw6b}} {
			inners := [][2]netip.Addr{{host4a, host4b}, {host6a, host6b}}
			if mode == ModeTransport {
				inners = [][2]netip.Addr{o}
			}
			for _, in := range inners {
				for _, encap := range []bool{false, true} {
					for _, esn := range []bool{false, true} {
						cs = append(cs, rtCase{
							name: fmt.Sprintf("%v/outer%v/inner%v/encap=%v/esn=%v", mode, family(o[0]), family(in[0]), encap, esn),
							mode: mode, outer: o, inner: in, encap: encap, esn: esn,
						})
					}
				}
			}
		}
	}
	return append(cs,
		rtCase{name: "tunnel/tfc", mode: ModeTunnel, outer: [2]netip.Addr{gw4a, gw4b}, inner: [2]netip.Addr{host4a, host4b}, tfc: 200},
		rtCase{name: "tunnel/esn-wrap", mode: ModeTunnel, outer: [2]netip.Addr{gw6a, gw6b}, inner: [2]netip.Addr{host6a, host6b}, esn: true, firstSeq: 1<<32 - 3},
	)
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// TestEncapDecapRoundTrip: every transform, mode, family mix, with and
// without UDP encapsulation and ESN. What one gateway protects, the other
// opens to the same packet, and the outer headers are what they should be.
func TestEncapDecapRoundTrip(t *testing.T) {
	for _, tr := range transforms {
		for _, tc := range rtCases() {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				out, in := saPair(t, SAConfig{
					SPI: 0x1000, Transform: tr.c, Mode: tc.mode, ESN: tc.esn,
					Src: tc.outer[0], Dst: tc.outer[1], Encap: tc.encap,
					ReplayWindow: DefaultReplayWindow, TFCPad: tc.tfc, FirstSeq: tc.firstSeq,
				})
				tx, rx := NewEngine(nil), NewEngine(nil)
				for i, n := range []int{0, 1, 13, 100, 1400} {
					orig := udpPacket(tc.inner[0], tc.inner[1], n, 0x2a<<2|ecnECT0)
					f := frameOf(orig)
					if d := tx.Encap(out, &f); d != DropNone {
						t.Fatalf("Encap: %v", d)
					}
					seq := tc.firstSeq + uint64(i) + 1
					checkOuter(t, f.Data(), tc, out, seq, len(orig))
					if d := rx.Decap(in, &f); d != DropNone {
						t.Fatalf("size %d: Decap: %v", n, d)
					}
					if !bytes.Equal(f.Data(), orig) {
						t.Fatalf("size %d: got\n%x\nwant\n%x", n, f.Data(), orig)
					}
				}
				if got := tx.C.EncapPackets.Load(); got != 5 {
					t.Errorf("encap packets %d, want 5", got)
				}
				if got := rx.C.DecapPackets.Load(); got != 5 || in.Stats.Packets.Load() != 5 || out.Stats.Packets.Load() != 5 {
					t.Errorf("decap packets %d, SA stats in %d out %d, want 5", got, in.Stats.Packets.Load(), out.Stats.Packets.Load())
				}
			})
		}
	}
}

// checkOuter checks the headers Encap built.
func checkOuter(t *testing.T, p []byte, tc rtCase, sa *OutboundSA, seq uint64, innerLen int) {
	t.Helper()
	var in Inbound
	f := Frame{Buf: p, Len: len(p)}
	if d := ParseInbound(&f, &in); d != DropNone {
		t.Fatalf("our own packet does not parse: %v", d)
	}
	if in.SPI != sa.spi || in.Encap != tc.encap || in.end != len(p) {
		t.Fatalf("parsed spi %#x encap %v end %d of %d", in.SPI, in.Encap, in.end, len(p))
	}
	if got := espHdr(p[in.espOff:]).seq(); got != uint32(seq) {
		t.Fatalf("seq %#x, want %#x", got, uint32(seq))
	}
	if tc.outer[0].Is4() {
		h := ipv4(p)
		if fold(sum(h[:h.headerLen()], 0)) != 0xffff {
			t.Fatal("bad IPv4 header checksum")
		}
		if tc.mode == ModeTunnel {
			if h.tos() != 0x2a<<2|ecnECT0 {
				t.Errorf("outer TOS %#x, want DSCP and ECN copied", h.tos())
			}
			if tc.inner[0].Is4() && h.flagsFrag() != ipv4FlagDF {
				t.Errorf("outer flags %#x, want DF copied", h.flagsFrag())
			}
		}
	} else if tc.mode == ModeTunnel && ipv6(p).trafficClass() != 0x2a<<2|ecnECT0 {
		t.Errorf("outer traffic class %#x", ipv6(p).trafficClass())
	}
	if tc.encap && !tc.outer[0].Is4() {
		u := p[in.ipLen:in.end]
		acc := sum(p[ipv6SrcOff:ipv6DstOff+16], uint64(len(u))+protoUDP)
		if fold(sum(u, acc)) != 0xffff {
			t.Fatal("bad UDP checksum over IPv6")
		}
	}
	if tc.mode == ModeTunnel && tc.tfc > innerLen {
		if len(p)-in.espOff < tc.tfc {
			t.Errorf("TFC padding missing: ESP %d bytes, want at least %d", len(p)-in.espOff, tc.tfc)
		}
	}
}

func TestSequenceNumbersNeverWrap(t *testing.T) {
	c := SAConfig{SPI: 0x1000, Transform: transforms[0].c, Src: gw4a, Dst: gw4b, FirstSeq: 1<<32 - 4, SoftSeq: 1<<32 - 3}
	out, err := NewOutboundSA(c)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(nil)
	if out.NeedsRekey() {
		t.Fatal("needs rekey before the soft limit")
	}
	frames := make([]Frame, 6)
	sas := make([]*OutboundSA, len(frames))
	drops := make([]Drop, len(frames))
	for i := range frames {
		frames[i] = frameOf(udpPacket(host4a, host4b, 10, 0))
		sas[i] = out
	}
	if n := e.EncapBatch(sas, frames, drops); n != 3 {
		t.Fatalf("sent %d of 6 at the end of the 32-bit space, want 3", n)
	}
	for i, d := range drops {
		want := DropNone
		if i >= 3 {
			want = DropSeqOverflow
		}
		if d != want {
			t.Errorf("frame %d: %v, want %v", i, d, want)
		}
	}
	if !out.NeedsRekey() || !out.Exhausted() || out.Seq() != 1<<32-1 {
		t.Errorf("needs rekey %v exhausted %v seq %#x", out.NeedsRekey(), out.Exhausted(), out.Seq())
	}
	if got := espHdr(frames[2].Data()[ipv4MinLen:]).seq(); got != 1<<32-1 {
		t.Errorf("last seq %#x", got)
	}
	f := frameOf(udpPacket(host4a, host4b, 10, 0))
	if d := e.Encap(out, &f); d != DropSeqOverflow {
		t.Fatalf("Encap after the end: %v", d)
	}
	if e.C.Dropped(DropSeqOverflow) != 4 {
		t.Errorf("seq_overflow counted %d, want 4", e.C.Dropped(DropSeqOverflow))
	}
	// With ESN the same SA goes on past 2^32.
	c.ESN = true
	c.SoftSeq = 0
	out, _ = NewOutboundSA(c)
	for range 6 {
		f := frameOf(udpPacket(host4a, host4b, 10, 0))
		if d := e.Encap(out, &f); d != DropNone {
			t.Fatalf("ESN: %v", d)
		}
	}
	if out.Seq() != 1<<32+2 || out.NeedsRekey() {
		t.Errorf("ESN seq %#x needs rekey %v", out.Seq(), out.NeedsRekey())
	}
}

func TestSAConfigRejects(t *testing.T) {
	good := SAConfig{SPI: 0x1000, Transform: transforms[0].c, Src: gw4a, Dst: gw4b, ReplayWindow: 64}
	for _, tc := range []struct {
		name string
		mod  func(*SAConfig)
	}{
		{"reserved SPI", func(c *SAConfig) { c.SPI = 255 }},
		{"no tunnel addresses", func(c *SAConfig) { c.Dst = netip.Addr{} }},
		{"mixed families", func(c *SAConfig) { c.Dst = gw6b }},
		{"negative window", func(c *SAConfig) { c.ReplayWindow = -1 }},
		{"huge window", func(c *SAConfig) { c.ReplayWindow = MaxReplayWindow + 1 }},
		{"bad mode", func(c *SAConfig) { c.Mode = 7 }},
		{"bad DSCP", func(c *SAConfig) { c.SetDSCP, c.DSCP = true, 64 }},
		{"bad transform", func(c *SAConfig) { c.Transform.EncrKey = c.Transform.EncrKey[:16] }},
		{"first seq at the end", func(c *SAConfig) { c.FirstSeq = 1<<32 - 1 }},
	} {
		c := good
		tc.mod(&c)
		if _, err := NewOutboundSA(c); err == nil {
			t.Errorf("%s: NewOutboundSA accepted it", tc.name)
		}
		if tc.name == "first seq at the end" {
			continue // only outbound SAs send
		}
		if _, err := NewInboundSA(c); err == nil {
			t.Errorf("%s: NewInboundSA accepted it", tc.name)
		}
	}
	if _, err := NewOutboundSA(good); err != nil {
		t.Fatal(err)
	}
}

// sealed returns a tunnel-mode ESP packet for tests that break it.
func sealed(tb testing.TB, out *OutboundSA, inner []byte) []byte {
	tb.Helper()
	f := frameOf(inner)
	if d := NewEngine(nil).Encap(out, &f); d != DropNone {
		tb.Fatal(d)
	}
	return append([]byte(nil), f.Data()...)
}

// TestDecapDrops: each malformed or hostile packet is dropped for its own
// named reason and counted, and nothing of its plaintext comes out.
func TestDecapDrops(t *testing.T) {
	cfg := SAConfig{SPI: 0x1000, Transform: transforms[0].c, Src: gw4a, Dst: gw4b, ReplayWindow: 64}
	inner := udpPacket(host4a, host4b, 40, 0)
	for _, tc := range []struct {
		name string
		make func(t testing.TB, out *OutboundSA) []byte
		want Drop
	}{
		{"truncated IP", func(t testing.TB, out *OutboundSA) []byte { return sealed(t, out, inner)[:10] }, DropHdrError},
		{"IP length past frame", func(t testing.TB, out *OutboundSA) []byte {
			p := sealed(t, out, inner)
			ipv4(p).setTotalLen(len(p) + 1)
			return p
		}, DropHdrError},
		{"fragment", func(t testing.TB, out *OutboundSA) []byte {
			p := sealed(t, out, inner)
			putUint16(p[ipv4FlagsOff:], ipv4FlagMF)
			return p
		}, DropFragment},
		{"not ESP", func(t testing.TB, out *OutboundSA) []byte { return udpPacket(gw4b, gw4a, 20, 0) }, DropNotESP},
		{"truncated ESP", func(t testing.TB, out *OutboundSA) []byte {
			p := sealed(t, out, inner)[:ipv4MinLen+6]
			ipv4(p).setTotalLen(len(p))
			return p
		}, DropHdrError},
		{"misaligned ciphertext", func(t testing.TB, out *OutboundSA) []byte {
			p := sealed(t, out, inner)
			p = p[:len(p)-1]
			ipv4(p).setTotalLen(len(p))
			return p
		}, DropHdrError},
		{"flipped bit", func(t testing.TB, out *OutboundSA) []byte {
			p := sealed(t, out, inner)
			p[len(p)-20] ^= 1
			return p
		}, DropAuthFailed},
		{"seq zero", func(t testing.TB, out *OutboundSA) []byte {
			p := sealed(t, out, inner)
			putUint32(p[ipv4MinLen+espSeqOff:], 0)
			return p
		}, DropTooOld},
		{"replay", func(t testing.TB, out *OutboundSA) []byte { return sealed(t, out, inner) }, DropReplay},
		{"bad padding", func(t testing.TB, out *OutboundSA) []byte {
			return sealedPlain(t, out, []byte{0xaa, 0xbb, 1, 2, 4, 4, 4, 4})
		}, DropPadError},
		{"pad length too long", func(t testing.TB, out *OutboundSA) []byte {
			return sealedPlain(t, out, []byte{0x45, 0, 1, 2, 3, 4, 200, 4})
		}, DropPadError},
		{"dummy", func(t testing.TB, out *OutboundSA) []byte { return sealedPlain(t, out, []byte{1, 2, 0, 59}) }, DropDummy},
		{"unknown next header", func(t testing.TB, out *OutboundSA) []byte { return sealedPlain(t, out, []byte{1, 2, 0, 6}) }, DropBadNextHeader},
		{"inner not IPv4", func(t testing.TB, out *OutboundSA) []byte {
			return sealedPlain(t, out, append(udpPacket(host6a, host6b, 2, 0), 0, 4))
		}, DropBadNextHeader},
		{"inner length past payload", func(t testing.TB, out *OutboundSA) []byte {
			p := udpPacket(host4a, host4b, 2, 0)
			ipv4(p).setTotalLen(len(p) + 4)
			ipv4(p).setChecksum()
			return sealedPlain(t, out, append(p, 0, 4))
		}, DropBadNextHeader},
		{"CE on not-ECT", func(t testing.TB, out *OutboundSA) []byte {
			p := sealed(t, out, inner)
			p[ipv4TOSOff] |= ecnCE
			ipv4(p).setChecksum()
			return p
		}, DropECN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, in := saPair(t, cfg)
			e := NewEngine(nil)
			p := tc.make(t, out)
			if tc.want == DropReplay {
				f := frameOf(p)
				if d := e.Decap(in, &f); d != DropNone {
					t.Fatalf("first copy: %v", d)
				}
			}
			f := frameOf(p)
			if d := e.Decap(in, &f); d != tc.want {
				t.Fatalf("Decap = %v, want %v", d, tc.want)
			}
			if e.C.Dropped(tc.want) != 1 {
				t.Errorf("%v counted %d times", tc.want, e.C.Dropped(tc.want))
			}
			if tc.want == DropAuthFailed && bytes.Contains(f.Buf, inner[ipv4MinLen+udpLen:]) {
				t.Error("the plaintext of a packet that failed its ICV is in the frame")
			}
		})
	}
}

// sealedPlain builds a tunnel-mode packet whose ESP plaintext (payload,
// padding, pad length, next header) is exactly pt, aligned for GCM.
func sealedPlain(tb testing.TB, out *OutboundSA, pt []byte) []byte {
	tb.Helper()
	e := out.esp
	if len(pt)%e.Align() != 0 {
		tb.Fatalf("plaintext of %d bytes is not aligned", len(pt))
	}
	seq, _ := out.reserve(1)
	n := ipv4MinLen + crypto.HeaderLen + e.IVLen() + len(pt) + e.ICVLen()
	p := make([]byte, n)
	copy(p, out.tmpl[:out.tmplLen])
	putUint32(p[out.tmplLen:], uint32(seq))
	ipv4(p).setTotalLen(n)
	ipv4(p).setChecksum()
	copy(p[ipv4MinLen+crypto.HeaderLen+e.IVLen():], pt)
	if err := e.Seal(crypto.NewScratch(), p, ipv4MinLen, seq, out.esn); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestEncapDrops(t *testing.T) {
	out, _ := saPair(t, SAConfig{SPI: 0x1000, Transform: transforms[0].c, Src: gw4a, Dst: gw4b})
	e := NewEngine(nil)
	inner := udpPacket(host4a, host4b, 40, 0)
	for _, tc := range []struct {
		name string
		f    Frame
		want Drop
	}{
		{"no headroom", Frame{Buf: append(append([]byte(nil), inner...), make([]byte, 64)...), Len: len(inner)}, DropNoRoom},
		{"no tailroom", Frame{Buf: append(make([]byte, 64), inner...), Off: 64, Len: len(inner)}, DropNoRoom},
		{"truncated", frameOf(inner[:30]), DropHdrError},
		{"not IP", frameOf(bytes.Repeat([]byte{0x20}, 40)), DropHdrError},
	} {
		f := tc.f
		if d := e.Encap(out, &f); d != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, d, tc.want)
		}
	}
	// Nor does a nil SA in a batch panic.
	frames := []Frame{frameOf(inner)}
	drops := make([]Drop, 1)
	if e.EncapBatch([]*OutboundSA{nil}, frames, drops); drops[0] != DropNoState {
		t.Errorf("nil SA: %v", drops[0])
	}
}

func TestEncapDecapAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	for _, tr := range transforms {
		for _, encap := range []bool{false, true} {
			out, in := saPair(t, SAConfig{SPI: 0x1000, Transform: tr.c, Src: gw6a, Dst: gw6b, Encap: encap, ESN: true, ReplayWindow: 4096})
			tx, rx := NewEngine(nil), NewEngine(nil)
			orig := udpPacket(host4a, host4b, 512, 0)
			f := frameOf(orig)
			allocs := testing.AllocsPerRun(200, func() {
				f.Off, f.Len = testHeadroom, len(orig)
				copy(f.Buf[f.Off:], orig)
				if d := tx.Encap(out, &f); d != DropNone {
					t.Fatal(d)
				}
				if d := rx.Decap(in, &f); d != DropNone {
					t.Fatal(d)
				}
			})
			if allocs != 0 {
				t.Errorf("%s encap=%v: %v allocations per packet, want 0", tr.name, encap, allocs)
			}
		}
	}
}

// TestBatchRuns: a batch mixing SAs gives each SA consecutive sequence
// numbers and counts per SA.
func TestBatchRuns(t *testing.T) {
	a, ain := saPair(t, SAConfig{SPI: 0x1000, Transform: transforms[0].c, Src: gw4a, Dst: gw4b, ReplayWindow: 64})
	b, bin := saPair(t, SAConfig{SPI: 0x2000, Transform: transforms[2].c, Src: gw4a, Dst: gw4b, ReplayWindow: 64})
	order := []*OutboundSA{a, a, b, a, b, b}
	frames := make([]Frame, len(order))
	for i := range frames {
		frames[i] = frameOf(udpPacket(host4a, host4b, 10*i, 0))
	}
	drops := make([]Drop, len(order))
	e := NewEngine(nil)
	if n := e.EncapBatch(order, frames, drops); n != 6 {
		t.Fatalf("sent %d", n)
	}
	wantSeq := []uint32{1, 2, 1, 3, 2, 3}
	ins := make([]Inbound, len(frames))
	inSAs := make([]*InboundSA, len(frames))
	for i := range frames {
		if d := ParseInbound(&frames[i], &ins[i]); d != DropNone {
			t.Fatal(d)
		}
		if got := espHdr(frames[i].Data()[ins[i].espOff:]).seq(); got != wantSeq[i] {
			t.Errorf("frame %d seq %d, want %d", i, got, wantSeq[i])
		}
		inSAs[i] = ain
		if ins[i].SPI == 0x2000 {
			inSAs[i] = bin
		}
	}
	if n := e.DecapBatch(inSAs, ins, frames, drops); n != 6 {
		t.Fatalf("decapsulated %d: %v", n, drops)
	}
	if a.Stats.Packets.Load() != 3 || bin.Stats.Packets.Load() != 3 {
		t.Errorf("per-SA packets %d %d", a.Stats.Packets.Load(), bin.Stats.Packets.Load())
	}
	if want := uint64(0+10+30) + 3*(ipv4MinLen+udpLen); a.Stats.Bytes.Load() != want || ain.Stats.Bytes.Load() != want {
		t.Errorf("per-SA bytes out %d in %d, want %d", a.Stats.Bytes.Load(), ain.Stats.Bytes.Load(), want)
	}
	_ = binary.BigEndian
}
