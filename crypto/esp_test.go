package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// testConfigs covers every transform and key length that NewESP accepts.
func testConfigs() []Config {
	k := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + n)
		}
		return b
	}
	return []Config{
		{Encr: ENCR_AES_GCM_16, EncrKey: k(16 + 4)},
		{Encr: ENCR_AES_GCM_16, EncrKey: k(24 + 4)},
		{Encr: ENCR_AES_GCM_16, EncrKey: k(32 + 4), EncrKeyBits: 256},
		{Encr: ENCR_NULL_AUTH_AES_GMAC, EncrKey: k(16 + 4)},
		{Encr: ENCR_NULL_AUTH_AES_GMAC, EncrKey: k(32 + 4)},
		{Encr: ENCR_CHACHA20_POLY1305, EncrKey: k(32 + 4)},
		{Encr: ENCR_AES_CBC, EncrKey: k(16), Integ: AUTH_HMAC_SHA2_256_128, IntegKey: k(32)},
		{Encr: ENCR_AES_CBC, EncrKey: k(24), Integ: AUTH_HMAC_SHA2_384_192, IntegKey: k(48)},
		{Encr: ENCR_AES_CBC, EncrKey: k(32), Integ: AUTH_HMAC_SHA2_512_256, IntegKey: k(64)},
		{Encr: ENCR_NULL, Integ: AUTH_HMAC_SHA2_256_128, IntegKey: k(32)},
	}
}

func TestNewESPRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want error
	}{
		{"unknown encr", Config{Encr: 3, EncrKey: make([]byte, 24)}, ErrUnknownTransform},
		{"unknown integ", Config{Encr: ENCR_AES_CBC, EncrKey: make([]byte, 16), Integ: 2, IntegKey: make([]byte, 20)}, ErrUnknownTransform},
		{"gcm short key", Config{Encr: ENCR_AES_GCM_16, EncrKey: make([]byte, 16)}, ErrKeyLength},
		{"gcm no salt 256", Config{Encr: ENCR_AES_GCM_16, EncrKey: make([]byte, 32)}, ErrKeyLength},
		{"gcm key attr mismatch", Config{Encr: ENCR_AES_GCM_16, EncrKey: make([]byte, 20), EncrKeyBits: 256}, ErrKeyLength},
		{"gcm with integ", Config{Encr: ENCR_AES_GCM_16, EncrKey: make([]byte, 20), Integ: AUTH_HMAC_SHA2_256_128, IntegKey: make([]byte, 32)}, ErrCombination},
		{"chacha 128", Config{Encr: ENCR_CHACHA20_POLY1305, EncrKey: make([]byte, 20)}, ErrKeyLength},
		{"cbc no integ", Config{Encr: ENCR_AES_CBC, EncrKey: make([]byte, 16)}, ErrCombination},
		{"cbc bad key", Config{Encr: ENCR_AES_CBC, EncrKey: make([]byte, 17), Integ: AUTH_HMAC_SHA2_256_128, IntegKey: make([]byte, 32)}, ErrKeyLength},
		{"hmac short key", Config{Encr: ENCR_AES_CBC, EncrKey: make([]byte, 16), Integ: AUTH_HMAC_SHA2_256_128, IntegKey: make([]byte, 16)}, ErrKeyLength},
		{"sha512 with 384 key", Config{Encr: ENCR_AES_CBC, EncrKey: make([]byte, 16), Integ: AUTH_HMAC_SHA2_512_256, IntegKey: make([]byte, 48)}, ErrKeyLength},
		{"null with key", Config{Encr: ENCR_NULL, EncrKey: make([]byte, 16), Integ: AUTH_HMAC_SHA2_256_128, IntegKey: make([]byte, 32)}, ErrKeyLength},
		{"null no integ", Config{Encr: ENCR_NULL}, ErrCombination},
	} {
		_, err := NewESP(tc.c)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: NewESP = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// espPacket lays out an ESP packet for e with room before it, the header
// filled in and the plaintext padded with the RFC 4303 monotonic pattern.
func espPacket(e *ESP, room int, spi uint32, seq uint64, payload []byte, nh byte) (buf []byte, off int) {
	n := len(payload) + TrailerLen
	pad := (e.Align() - n%e.Align()) % e.Align()
	ptLen := n + pad
	buf = make([]byte, room+HeaderLen+e.IVLen()+ptLen+e.ICVLen())
	off = room
	p := buf[off:]
	binary.BigEndian.PutUint32(p[espSPIOff:], spi)
	binary.BigEndian.PutUint32(p[espSeqOff:], uint32(seq))
	pt := p[HeaderLen+e.IVLen():]
	copy(pt, payload)
	for i := 0; i < pad; i++ {
		pt[len(payload)+i] = byte(i + 1)
	}
	pt[len(payload)+pad] = byte(pad)
	pt[len(payload)+pad+1] = nh
	return buf, off
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := NewScratch()
	for _, c := range testConfigs() {
		e, err := NewESP(c)
		if err != nil {
			t.Fatalf("NewESP(%v/%v): %v", c.Encr, c.Integ, err)
		}
		for _, esn := range []bool{false, true} {
			for _, size := range []int{0, 1, 15, 16, 64, 1400} {
				payload := bytes.Repeat([]byte{0xa5}, size)
				seq := uint64(0x1_0000_0005)
				buf, off := espPacket(e, 8, 0x01020304, seq, payload, 4)
				want := append([]byte(nil), buf[off+HeaderLen+e.IVLen():len(buf)-e.ICVLen()]...)
				if err := e.Seal(s, buf, off, seq, esn); err != nil {
					t.Fatalf("%v esn=%v size=%d: Seal: %v", e, esn, size, err)
				}
				if e.kind != kindGMAC && e.kind != kindNull && size >= 16 && bytes.Contains(buf, payload[:16]) {
					t.Errorf("%v: plaintext visible after Seal", e)
				}
				sealed := append([]byte(nil), buf...)
				pt, err := e.Open(s, buf, off, uint32(seq>>32), esn)
				if err != nil {
					t.Fatalf("%v esn=%v size=%d: Open: %v", e, esn, size, err)
				}
				if !bytes.Equal(pt, want) {
					t.Fatalf("%v esn=%v size=%d: Open gave %x, want %x", e, esn, size, pt, want)
				}
				if !bytes.Equal(buf[:off], sealed[:off]) {
					t.Fatalf("%v: bytes before the ESP header changed", e)
				}
				// A wrong high half of the sequence number must fail under ESN
				// and be ignored without it.
				copy(buf, sealed)
				_, err = e.Open(s, buf, off, uint32(seq>>32)+1, esn)
				if esn && !errors.Is(err, ErrAuth) || !esn && err != nil {
					t.Fatalf("%v esn=%v: Open with other seq hi = %v", e, esn, err)
				}
				// Every single-bit flip anywhere in the packet must fail.
				for i := off; i < len(buf); i++ {
					copy(buf, sealed)
					buf[i] ^= 0x10
					if _, err := e.Open(s, buf, off, uint32(seq>>32), esn); !errors.Is(err, ErrAuth) {
						t.Fatalf("%v esn=%v size=%d: flip at %d: Open = %v, want ErrAuth", e, esn, size, i-off, err)
					}
				}
			}
		}
	}
}

func TestOpenRejectsBadLengths(t *testing.T) {
	s := NewScratch()
	for _, c := range testConfigs() {
		e, _ := NewESP(c)
		for n := 0; n < e.Overhead()+2*e.Align()+1; n++ {
			buf := make([]byte, n+4)
			_, err := e.Open(s, buf, 4, 0, true)
			if err == nil {
				t.Fatalf("%v: Open of %d zero bytes succeeded", e, n)
			}
		}
		if err := e.Seal(s, make([]byte, e.Overhead()+1), 0, 1, false); !errors.Is(err, ErrLength) {
			t.Errorf("%v: Seal of a misaligned packet = %v, want ErrLength", e, err)
		}
	}
	e, _ := NewESP(testConfigs()[3]) // GMAC needs room for the ESN AAD
	buf, _ := espPacket(e, 0, 1, 1, []byte("x"), 4)
	if err := e.Seal(s, buf, 0, 1, true); !errors.Is(err, ErrRoom) {
		t.Errorf("GMAC ESN Seal without room = %v, want ErrRoom", err)
	}
}

// TestCounterIVNeverRepeats: the explicit IV of the counter-mode transforms is
// the sequence number, so two packets of one SA never share a nonce.
func TestCounterIVNeverRepeats(t *testing.T) {
	s := NewScratch()
	e, _ := NewESP(testConfigs()[0])
	seen := map[string]bool{}
	for seq := uint64(0xFFFF_FFF0); seq < 0x1_0000_0010; seq++ {
		buf, off := espPacket(e, 0, 1, seq, []byte("abcd"), 4)
		if err := e.Seal(s, buf, off, seq, true); err != nil {
			t.Fatal(err)
		}
		iv := string(buf[off+HeaderLen : off+HeaderLen+e.IVLen()])
		if seen[iv] {
			t.Fatalf("IV %x repeated at seq %#x", iv, seq)
		}
		seen[iv] = true
	}
}

func TestCBCRandomIV(t *testing.T) {
	s := NewScratch()
	e, _ := NewESP(testConfigs()[6])
	a, off := espPacket(e, 0, 1, 1, []byte("abcd"), 4)
	b, _ := espPacket(e, 0, 1, 1, []byte("abcd"), 4)
	e.Seal(s, a, off, 1, false)
	e.Seal(s, b, off, 1, false)
	if bytes.Equal(a[HeaderLen:HeaderLen+16], b[HeaderLen:HeaderLen+16]) {
		t.Fatal("two CBC packets got the same IV")
	}
}

func TestStringHidesKeys(t *testing.T) {
	for _, c := range testConfigs() {
		e, _ := NewESP(c)
		s := e.String()
		if bytes.Contains([]byte(s), c.EncrKey[:min(4, len(c.EncrKey))]) && len(c.EncrKey) > 0 {
			t.Errorf("String %q shows key bytes", s)
		}
		if s == "" {
			t.Error("empty String")
		}
	}
}

func TestSealOpenAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	s := NewScratch()
	for _, c := range testConfigs() {
		e, _ := NewESP(c)
		buf, off := espPacket(e, 8, 1, 7, make([]byte, 512), 4)
		orig := append([]byte(nil), buf...)
		allocs := testing.AllocsPerRun(100, func() {
			copy(buf, orig)
			if err := e.Seal(s, buf, off, 7, true); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Open(s, buf, off, 0, true); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per Seal+Open, want 0", e, allocs)
		}
	}
}

func FuzzOpen(f *testing.F) {
	ciphers := []*ESP{}
	for _, c := range testConfigs() {
		e, _ := NewESP(c)
		ciphers = append(ciphers, e)
	}
	s := NewScratch()
	for i, e := range ciphers {
		buf, off := espPacket(e, 4, 1, 9, []byte("seed"), 4)
		e.Seal(s, buf, off, 9, i%2 == 0)
		f.Add(uint8(i), i%2 == 0, buf[off:])
	}
	f.Fuzz(func(t *testing.T, which uint8, esn bool, pkt []byte) {
		e := ciphers[int(which)%len(ciphers)]
		buf := append(make([]byte, 4, 4+len(pkt)), pkt...)
		pt, err := e.Open(s, buf, 4, 0, esn)
		if err == nil && len(pt) < TrailerLen {
			t.Fatalf("Open accepted %d bytes of plaintext", len(pt))
		}
		if err != nil && pt != nil {
			t.Fatal("plaintext released on failure")
		}
	})
}
