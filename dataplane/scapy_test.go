package dataplane

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/espx/espx/crypto"
)

// The cross-check against scapy's independent ESP implementation
// (scapy.layers.ipsec.SecurityAssociation, scapy 2.5.0 from Debian's
// python3-scapy): for every transform, mode, address family mix, with and
// without UDP encapsulation and ESN, scapy decrypts what our Encap sends and
// must get back the packet we started from, and our Decap opens what scapy
// sends to the packet scapy started from. testdata/scapy_esp.py does the
// scapy side, for all cases in one process because importing scapy takes
// about a second. It documents the scapy quirks it works around, and reports
// in each case's notes which ones it met; they are logged with -v.

const (
	// scapyPython is Debian's interpreter, which python3-scapy installs
	// into; a python3 earlier on PATH (pyenv, a venv) usually lacks it.
	scapyPython  = "/usr/bin/python3"
	scapyScript  = "testdata/scapy_esp.py"
	scapyTimeout = 60 * time.Second
	// scapyNoScapy is the script's exit status when it cannot import
	// scapy or scapy has no cryptography backend.
	scapyNoScapy = 77
	// Room around the packet in a frame, as in a UMEM chunk.
	scapyRoom = 256
)

// scapyTransforms are the transforms scapy implements, with scapy's names
// for them. ENCR_NULL_AUTH_AES_GMAC (RFC 4543) is missing: scapy 2.5.0 has
// no AES-GMAC in CRYPT_ALGOS, so it is not cross-checked here.
type scapyTransform struct {
	name        string
	encr        crypto.EncrID
	integ       crypto.IntegID
	encrKeyLen  int // with the 4-byte salt of the AEADs
	integKeyLen int
	scapyEncr   string // CRYPT_ALGOS key
	scapyAuth   string // AUTH_ALGOS key, "" for combined modes
}

var scapyTransforms = []scapyTransform{
	{"aes128gcm16", crypto.ENCR_AES_GCM_16, crypto.AUTH_NONE, 16 + 4, 0, "AES-GCM", ""},
	{"aes192gcm16", crypto.ENCR_AES_GCM_16, crypto.AUTH_NONE, 24 + 4, 0, "AES-GCM", ""},
	{"aes256gcm16", crypto.ENCR_AES_GCM_16, crypto.AUTH_NONE, 32 + 4, 0, "AES-GCM", ""},
	{"aes128cbc-sha256", crypto.ENCR_AES_CBC, crypto.AUTH_HMAC_SHA2_256_128, 16, 32, "AES-CBC", "SHA2-256-128"},
	{"aes192cbc-sha384", crypto.ENCR_AES_CBC, crypto.AUTH_HMAC_SHA2_384_192, 24, 48, "AES-CBC", "SHA2-384-192"},
	{"aes256cbc-sha512", crypto.ENCR_AES_CBC, crypto.AUTH_HMAC_SHA2_512_256, 32, 64, "AES-CBC", "SHA2-512-256"},
	{"chacha20poly1305", crypto.ENCR_CHACHA20_POLY1305, crypto.AUTH_NONE, 32 + 4, 0, "CHACHA20-POLY1305", ""},
	{"null-sha256", crypto.ENCR_NULL, crypto.AUTH_HMAC_SHA2_256_128, 0, 32, "NULL", "SHA2-256-128"},
}

// Documentation addresses (RFC 5737, RFC 3849): gateways a and b, and a
// host behind each.
var (
	scapyGW4   = [2]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	scapyGW6   = [2]netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")}
	scapyHost4 = [2]netip.Addr{netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20")}
	scapyHost6 = [2]netip.Addr{netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:2::20")}
)

// scapyTopologies: tunnel mode with every inner/outer family pair, transport
// mode with each family (where the outer header is the packet's own).
type scapyTopology struct {
	name  string
	mode  Mode
	outer [2]netip.Addr // tunnel mode only
	inner [2]netip.Addr
}

var scapyTopologies = []scapyTopology{
	{"tunnel/4in4", ModeTunnel, scapyGW4, scapyHost4},
	{"tunnel/6in6", ModeTunnel, scapyGW6, scapyHost6},
	{"tunnel/4in6", ModeTunnel, scapyGW6, scapyHost4},
	{"tunnel/6in4", ModeTunnel, scapyGW4, scapyHost6},
	{"transport/v4", ModeTransport, [2]netip.Addr{}, scapyHost4},
	{"transport/v6", ModeTransport, [2]netip.Addr{}, scapyHost6},
}

// scapyPayloads are the inner packets of each case and direction: a UDP or
// ICMP echo payload length each, alternating UDP and ICMP.
var scapyPayloads = []int{0, 1, 100, 1400}

// scapyESNFirst puts the packets of the ESN cases on both sides of 2^32:
// 2^32-2, 2^32-1, 2^32, 2^32+1.
const scapyESNFirst = 1<<32 - 3

// scapyHex is bytes that travel as a hex string in the JSON files.
type scapyHex []byte

func (h scapyHex) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func (h *scapyHex) UnmarshalText(b []byte) error {
	p, err := hex.DecodeString(string(b))
	*h = p
	return err
}

// scapyCase is one case as the script reads it.
type scapyCase struct {
	Name      string   `json:"name"`
	Encr      string   `json:"encr"`
	Auth      string   `json:"auth"`
	Mode      string   `json:"mode"`
	ESN       bool     `json:"esn"`
	Encap     bool     `json:"encap"`
	GoToScapy scapyDir `json:"go_to_scapy"`
	ScapyToGo scapyDir `json:"scapy_to_go"`
}

// scapyDir is one direction of a case: one SA and its packets.
type scapyDir struct {
	SPI      uint32   `json:"spi"`
	EncrKey  scapyHex `json:"encr_key"`
	IntegKey scapyHex `json:"integ_key"`
	// Src and Dst are the outer addresses of tunnel mode, "" in transport.
	Src   string     `json:"src"`
	Dst   string     `json:"dst"`
	Seqs  []uint64   `json:"seqs"`  // full 64-bit sequence number of each packet
	Plain []scapyHex `json:"plain"` // the packets to protect
	// Packets are our Encap's output for Plain (go_to_scapy only).
	Packets []scapyHex `json:"packets,omitempty"`
}

type scapyResults struct {
	Scapy string        `json:"scapy"`
	Cases []scapyResult `json:"cases"`
}

// scapyResult is what the script did with one case.
type scapyResult struct {
	Name string `json:"name"`
	// Decrypted is scapy's decryption of GoToScapy.Packets.
	Decrypted []scapyPacket `json:"decrypted"`
	// Encrypted is scapy's encryption of ScapyToGo.Plain.
	Encrypted []scapyPacket `json:"encrypted"`
	// Notes name the scapy quirks the script worked around.
	Notes []string `json:"notes"`
}

type scapyPacket struct {
	Hex   scapyHex `json:"hex"`
	Error string   `json:"error"`
}

func TestScapyCrossCheck(t *testing.T) {
	var cases []scapyCase
	inbound := map[string]*InboundSA{}
	for _, tr := range scapyTransforms {
		for _, topo := range scapyTopologies {
			for _, encap := range []bool{false, true} {
				for _, esn := range []bool{false, true} {
					c, in := scapyBuildCase(t, len(cases), tr, topo, encap, esn)
					cases = append(cases, c)
					inbound[c.Name] = in
				}
			}
		}
	}
	results := scapyRun(t, cases)
	for i, c := range cases {
		r := results.Cases[i]
		t.Run(c.Name, func(t *testing.T) {
			if r.Name != c.Name {
				t.Fatalf("result %d is for %q", i, r.Name)
			}
			for _, n := range r.Notes {
				t.Logf("scapy quirk: %s", n)
			}
			scapyCheckDecrypted(t, c, r)
			scapyCheckDecap(t, c, r, inbound[c.Name])
		})
	}
}

// scapyBuildCase makes the SAs of one case, protects its packets with our
// Encap, and returns the case with our inbound SA for scapy's packets.
func scapyBuildCase(tb testing.TB, idx int, tr scapyTransform, topo scapyTopology, encap, esn bool) (scapyCase, *InboundSA) {
	tb.Helper()
	mode, outer, inner := topo.mode, topo.outer, topo.inner
	c := scapyCase{
		Name: tr.name + "/" + topo.name, Encr: tr.scapyEncr, Auth: tr.scapyAuth,
		Mode: mode.String(), ESN: esn, Encap: encap,
	}
	if encap {
		c.Name += "/natt"
	} else {
		c.Name += "/esp"
	}
	first := uint64(0)
	if esn {
		c.Name += "/esn"
		first = scapyESNFirst
	} else {
		c.Name += "/seq32"
	}
	transform := func(dir string) (crypto.Config, scapyDir) {
		tc := crypto.Config{Encr: tr.encr, Integ: tr.integ}
		d := scapyDir{SPI: 0x10000 + uint32(idx)*2}
		if dir == "scapy_to_go" {
			d.SPI++
		}
		if tr.encrKeyLen > 0 {
			tc.EncrKey = scapyKey(c.Name+"/"+dir+"/encr", tr.encrKeyLen)
			d.EncrKey = tc.EncrKey
		}
		if tr.integKeyLen > 0 {
			tc.IntegKey = scapyKey(c.Name+"/"+dir+"/integ", tr.integKeyLen)
			d.IntegKey = tc.IntegKey
		}
		for i := range scapyPayloads {
			d.Seqs = append(d.Seqs, first+uint64(i)+1)
		}
		return tc, d
	}

	// We are gateway a: our outbound SA goes to b, where scapy is.
	tc, d := transform("go_to_scapy")
	cfg := SAConfig{SPI: d.SPI, Transform: tc, Mode: mode, ESN: esn, Encap: encap, FirstSeq: first}
	if mode == ModeTunnel {
		cfg.Src, cfg.Dst = outer[0], outer[1]
		d.Src, d.Dst = outer[0].String(), outer[1].String()
	}
	out, err := NewOutboundSA(cfg)
	if err != nil {
		tb.Fatalf("%s: %v", c.Name, err)
	}
	e := NewEngine(nil)
	for i, n := range scapyPayloads {
		p := scapyInner(inner[0], inner[1], i, n)
		f := scapyFrame(p)
		if drop := e.Encap(out, &f); drop != DropNone {
			tb.Fatalf("%s: Encap of packet %d: %v", c.Name, i, drop)
		}
		d.Plain = append(d.Plain, p)
		d.Packets = append(d.Packets, bytes.Clone(f.Data()))
	}
	c.GoToScapy = d

	// Scapy, as gateway b, sends back to us through another SA.
	tc, d = transform("scapy_to_go")
	cfg = SAConfig{SPI: d.SPI, Transform: tc, Mode: mode, ESN: esn, Encap: encap, ReplayWindow: DefaultReplayWindow}
	if mode == ModeTunnel {
		cfg.Src, cfg.Dst = outer[1], outer[0]
		d.Src, d.Dst = outer[1].String(), outer[0].String()
	}
	in, err := NewInboundSA(cfg)
	if err != nil {
		tb.Fatalf("%s: %v", c.Name, err)
	}
	for i, n := range scapyPayloads {
		d.Plain = append(d.Plain, scapyInner(inner[1], inner[0], i, n))
	}
	c.ScapyToGo = d
	return c, in
}

// scapyRun runs the script on the cases and returns its results, or skips
// the test when scapy is not there.
func scapyRun(tb testing.TB, cases []scapyCase) scapyResults {
	tb.Helper()
	dir := tb.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	b, err := json.Marshal(map[string]any{"cases": cases})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(inPath, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(tb.Context(), scapyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, scapyPython, scapyScript, inPath, outPath)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		tb.Skipf("scapy not installed: run make deps (apt-get install python3-scapy): no %s", scapyPython)
	case errors.As(err, &exit) && exit.ExitCode() == scapyNoScapy:
		tb.Skipf("scapy not installed: run make deps (apt-get install python3-scapy): %s", bytes.TrimSpace(stderr.Bytes()))
	case ctx.Err() != nil:
		tb.Fatalf("%s did not finish in %v: %s", scapyScript, scapyTimeout, stderr.Bytes())
	case err != nil:
		tb.Fatalf("%s: %v\n%s", scapyScript, err, stderr.Bytes())
	}
	var res scapyResults
	b, err = os.ReadFile(outPath)
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		tb.Fatalf("reading the results of %s: %v\n%s", scapyScript, err, stderr.Bytes())
	}
	if len(res.Cases) != len(cases) {
		tb.Fatalf("%s returned %d results for %d cases", scapyScript, len(res.Cases), len(cases))
	}
	tb.Logf("scapy %s: %d cases, %d packets each way, in %v", res.Scapy, len(cases), len(cases)*len(scapyPayloads), time.Since(start).Round(time.Millisecond))
	return res
}

// scapyCheckDecrypted: scapy decrypted each of our packets to exactly the
// packet we protected. In tunnel mode that is the inner packet as it was.
// In transport mode scapy rebuilds the IP header from the one it received:
// it sets the IPv4 protocol or IPv6 next header from the ESP trailer and
// recomputes the IPv4 total length and header checksum or the IPv6 payload
// length. Those are exactly the fields our Encap changed (RFC 4303 section
// 3.1.1), and everything else, TOS/traffic class, flow label, ID, flags,
// TTL/hop limit, addresses, goes through unchanged, so the whole packet
// must still match byte for byte: no field is masked.
func scapyCheckDecrypted(tb testing.TB, c scapyCase, r scapyResult) {
	tb.Helper()
	d := c.GoToScapy
	if len(r.Decrypted) != len(d.Packets) {
		tb.Fatalf("scapy returned %d decryptions of our %d packets", len(r.Decrypted), len(d.Packets))
	}
	for i, p := range r.Decrypted {
		if p.Error != "" {
			tb.Errorf("our packet %d (seq %#x, %d bytes): scapy: %s\npacket %s", i, d.Seqs[i], len(d.Packets[i]), p.Error, scapyShort(d.Packets[i]))
			continue
		}
		if !bytes.Equal(p.Hex, d.Plain[i]) {
			tb.Errorf("our packet %d (seq %#x): scapy decrypted it to something else:\n%s", i, d.Seqs[i], scapyDiff(p.Hex, d.Plain[i]))
		}
	}
}

// scapyCheckDecap: our Decap opens each of scapy's packets to exactly the
// packet scapy protected, and drops a copy of the first one with a bit of
// its ciphertext flipped as an ICV failure. The tampered copy goes first,
// so that its sequence number is still new and only the ICV can stop it.
func scapyCheckDecap(tb testing.TB, c scapyCase, r scapyResult, in *InboundSA) {
	tb.Helper()
	d := c.ScapyToGo
	if len(r.Encrypted) != len(d.Plain) {
		tb.Fatalf("scapy returned %d packets for %d", len(r.Encrypted), len(d.Plain))
	}
	e := NewEngine(nil)
	tampered := false
	for i, p := range r.Encrypted {
		if p.Error != "" {
			tb.Errorf("scapy could not protect packet %d (seq %#x): %s", i, d.Seqs[i], p.Error)
			continue
		}
		if !tampered {
			tampered = true
			scapyCheckTampered(tb, e, in, p.Hex)
		}
		f := scapyFrame(p.Hex)
		if drop := e.Decap(in, &f); drop != DropNone {
			tb.Errorf("scapy's packet %d (seq %#x): Decap: %v\npacket %s", i, d.Seqs[i], drop, scapyShort(p.Hex))
			continue
		}
		if !bytes.Equal(f.Data(), d.Plain[i]) {
			tb.Errorf("scapy's packet %d (seq %#x): Decap made something else of it:\n%s", i, d.Seqs[i], scapyDiff(f.Data(), d.Plain[i]))
		}
	}
	if got, want := in.Window().Top(), d.Seqs[len(d.Seqs)-1]; !tb.Failed() && got != want {
		tb.Errorf("replay window top %#x after the last packet, want %#x", got, want)
	}
}

// scapyCheckTampered flips the low bit of the first ciphertext byte (the
// first byte after the IV; the plaintext itself for ENCR_NULL) of a copy of
// pkt and checks that Decap drops it for its ICV.
func scapyCheckTampered(tb testing.TB, e *Engine, in *InboundSA, pkt []byte) {
	tb.Helper()
	f := scapyFrame(pkt)
	var info Inbound
	if drop := ParseInbound(&f, &info); drop != DropNone {
		tb.Errorf("scapy's packet does not parse: %v\npacket %s", drop, scapyShort(pkt))
		return
	}
	f.Data()[info.espOff+crypto.HeaderLen+in.esp.IVLen()] ^= 1
	before := e.C.Dropped(DropAuthFailed)
	if drop := e.Decap(in, &f); drop != DropAuthFailed {
		tb.Errorf("scapy's packet with a ciphertext bit flipped: Decap: %v, want %v", drop, DropAuthFailed)
	}
	if got := e.C.Dropped(DropAuthFailed) - before; got != 1 {
		tb.Errorf("auth_failed counted %d times for the tampered packet, want 1", got)
	}
}

// scapyInner builds the i-th packet of a case, from src to dst with n bytes
// of payload: UDP for even i, ICMP or ICMPv6 echo request for odd i. The
// DSCP/ECN, ID and flow label are not zero so that a field lost on the way
// shows, and every checksum is valid.
func scapyInner(src, dst netip.Addr, i, n int) []byte {
	var l4 []byte
	var proto uint8
	if i%2 == 0 {
		proto = protoUDP
		l4 = make([]byte, udpLen+n)
		putPorts(l4, 40000+uint16(i), 9)
		putUint16(l4[udpLenOff:], uint16(len(l4)))
	} else {
		proto, l4 = 1, make([]byte, 8+n) // ICMP echo request
		l4[0] = 8
		if src.Is6() {
			proto, l4[0] = 58, 128 // ICMPv6 echo request
		}
		putUint16(l4[4:], 0x1234) // identifier
		putUint16(l4[6:], uint16(i))
	}
	for k := range n {
		l4[len(l4)-n+k] = byte(i + 7*k)
	}
	csumOff := 2 // ICMP
	if proto == protoUDP {
		csumOff = udpCsumOff
	}
	acc := uint64(0)
	if proto != 1 { // only ICMPv4 has no pseudo-header
		s, d := src.AsSlice(), dst.AsSlice()
		acc = sum(s, sum(d, uint64(len(l4))+uint64(proto)))
	}
	c := ^fold(sum(l4, acc))
	if c == 0 && proto == protoUDP {
		c = 0xffff
	}
	putUint16(l4[csumOff:], c)

	const tos = 0x2a<<2 | ecnECT0 // AF41, ECT(0)
	if src.Is4() {
		h := make(ipv4, ipv4MinLen)
		h[0] = 4<<4 | ipv4MinLen/4
		h[ipv4TOSOff] = tos
		h.setTotalLen(ipv4MinLen + len(l4))
		putUint16(h[ipv4IDOff:], 0x4000+uint16(i))
		putUint16(h[ipv4FlagsOff:], ipv4FlagDF)
		h[ipv4TTLOff] = 64
		h[ipv4ProtoOff] = proto
		s, d := src.As4(), dst.As4()
		copy(h[ipv4SrcOff:], s[:])
		copy(h[ipv4DstOff:], d[:])
		h.setChecksum()
		return append(h, l4...)
	}
	h := make(ipv6, ipv6Len)
	h.setTrafficClass(tos)
	h[1] |= 0x5 // flow label 0x5eed0+i
	h[2], h[3] = 0xee, 0xd0+byte(i)
	h.setPayloadLen(len(l4))
	h[ipv6NextOff] = proto
	h[ipv6HopOff] = 64
	s, d := src.As16(), dst.As16()
	copy(h[ipv6SrcOff:], s[:])
	copy(h[ipv6DstOff:], d[:])
	return append(h, l4...)
}

// scapyFrame puts a copy of p into a frame with room on both sides.
func scapyFrame(p []byte) Frame {
	buf := make([]byte, scapyRoom+len(p)+scapyRoom)
	copy(buf[scapyRoom:], p)
	return Frame{Buf: buf, Off: scapyRoom, Len: len(p)}
}

// scapyKey is n key bytes derived from a label, so that every SA of every
// case has its own keys and a run is reproducible.
func scapyKey(label string, n int) []byte {
	k := sha512.Sum512([]byte(label))
	return k[:n]
}

// scapyDiff shows where two packets part.
func scapyDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-16)
	show := func(p []byte) []byte { return p[min(from, len(p)):min(i+32, len(p))] }
	return fmt.Sprintf("got %d bytes, want %d; first difference at byte %d\n got[%d:] %x\nwant[%d:] %x",
		len(got), len(want), i, from, show(got), from, show(want))
}

// scapyShort is the start of a packet in hex, enough to see its headers.
func scapyShort(p []byte) string {
	const n = 128
	if len(p) <= n {
		return hex.EncodeToString(p)
	}
	return fmt.Sprintf("%x... (%d bytes)", p[:n], len(p))
}
