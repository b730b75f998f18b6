package crypto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
)

// skConfigs covers every transform and key length NewSK accepts.
func skConfigs() []Config {
	k := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*13)
		}
		return b
	}
	// Every configuration has keys of its own, as every SA has: FuzzSKOpen
	// counts a message one of them opens that another sealed as a forgery.
	var cs []Config
	for _, bits := range []int{128, 192, 256} {
		cs = append(cs, Config{Encr: ENCR_AES_GCM_16, EncrKeyBits: bits, EncrKey: k(bits/8+4, byte(len(cs)))})
	}
	for i, integ := range []IntegID{AUTH_HMAC_SHA2_256_128, AUTH_HMAC_SHA2_384_192, AUTH_HMAC_SHA2_512_256} {
		for _, bits := range []int{128, 192, 256} {
			cs = append(cs, Config{Encr: ENCR_AES_CBC, EncrKeyBits: bits, EncrKey: k(bits/8, byte(len(cs))),
				Integ: integ, IntegKey: k(32+16*i, byte(0x80+len(cs)))})
		}
	}
	return append(cs, Config{Encr: ENCR_CHACHA20_POLY1305, EncrKey: k(36, byte(len(cs)))})
}

func mustSK(tb testing.TB, c Config) *SK {
	tb.Helper()
	sk, err := NewSK(c)
	if err != nil {
		tb.Fatalf("NewSK(%v/%v): %v", c.Encr, c.Integ, err)
	}
	return sk
}

// ikeHead lays out a message for sk: an IKE header (SPIs, Next Payload,
// version 2.0, INFORMATIONAL, Initiator flag, Message ID), extra bytes of
// an unencrypted payload when extra > 0, and the SK payload's generic
// header, with the IKE Length and SK Payload Length set for n bytes of
// plaintext. The SK payload is at IKEHeaderLen + extra.
func ikeHead(sk *SK, extra, n int) []byte {
	skOff := IKEHeaderLen + extra
	msg := make([]byte, skOff+SKHeaderLen)
	binary.BigEndian.PutUint64(msg[0:], 0xc0c1c2c3c4c5c6c7)
	binary.BigEndian.PutUint64(msg[8:], 0xd0d1d2d3d4d5d6d7)
	msg[16], msg[17], msg[18], msg[19] = 46, 0x20, 37, 0x08
	binary.BigEndian.PutUint32(msg[20:], 7)
	for i := IKEHeaderLen; i < skOff; i++ {
		msg[i] = byte(0x60 + i)
	}
	msg[skOff] = 41 // the first inner payload: Notify
	total := skOff + SKHeaderLen + sk.Overhead(n) + n
	binary.BigEndian.PutUint32(msg[ikeLengthOff:], uint32(total))
	binary.BigEndian.PutUint16(msg[skOff+payloadLengthOff:], uint16(total-skOff))
	return msg
}

func sealTestMessage(tb testing.TB, sk *SK, extra int, pt []byte) []byte {
	tb.Helper()
	msg, err := sk.Seal(ikeHead(sk, extra, len(pt)), IKEHeaderLen+extra, pt)
	if err != nil {
		tb.Fatalf("%v Seal: %v", sk, err)
	}
	return msg
}

// TestSKChaCha20RFC7634 is RFC 7634 Appendix B: an INFORMATIONAL request
// with a SET_WINDOW_SIZE notification in a ChaCha20-Poly1305 SK payload,
// byte for byte. The same vector is in strongSwan (test_message_chapoly.c)
// and OpenBSD (regress/sys/crypto/chachapoly).
func TestSKChaCha20RFC7634(t *testing.T) {
	key := unhex(t, `80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f
	                 90 91 92 93 94 95 96 97 98 99 9a 9b 9c 9d 9e 9f
	                 a0 a1 a2 a3`) // key, then salt
	iv := unhex(t, "10 11 12 13 14 15 16 17")
	head := unhex(t, `c0 c1 c2 c3 c4 c5 c6 c7 d0 d1 d2 d3 d4 d5 d6 d7
	                  2e 20 25 00 00 00 00 09 00 00 00 45 29 00 00 29`)
	notify := unhex(t, "00 00 00 0c 00 00 40 01 00 00 00 0a") // SET_WINDOW_SIZE 10
	want := unhex(t, `c0 c1 c2 c3 c4 c5 c6 c7 d0 d1 d2 d3 d4 d5 d6 d7
	                  2e 20 25 00 00 00 00 09 00 00 00 45 29 00 00 29
	                  10 11 12 13 14 15 16 17 61 03 94 70 1f 8d 01 7f
	                  7c 12 92 48 89 6b 71 bf e2 52 36 ef d7 cd c6 70
	                  66 90 63 15 b2`)
	sk := mustSK(t, Config{Encr: ENCR_CHACHA20_POLY1305, EncrKey: key})
	if n := len(head) + sk.Overhead(len(notify)) + len(notify); n != len(want) {
		t.Fatalf("Overhead predicts a %d-byte message, the RFC's is %d", n, len(want))
	}
	got, err := sk.seal(head, IKEHeaderLen, notify, iv)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("seal = %v\n got %x\nwant %x", err, got, want)
	}
	pt, err := sk.Open(bytes.Clone(want), IKEHeaderLen)
	if err != nil || !bytes.Equal(pt, notify) {
		t.Fatalf("Open = %x, %v; want %x", pt, err, notify)
	}
	assertEveryFlipFails(t, sk, want, IKEHeaderLen)
}

// assertEveryFlipFails flips the low and the high bit of every byte of a
// valid message, one at a time, and wants every Open to fail without
// plaintext: ErrAuth, or ErrSKLength where a length field was hit.
func assertEveryFlipFails(t *testing.T, sk *SK, msg []byte, skOff int) {
	t.Helper()
	for i := range msg {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(msg)
			bad[i] ^= bit
			pt, err := sk.Open(bad, skOff)
			lengthField := (i >= ikeLengthOff && i < ikeLengthOff+4) || (i >= skOff+payloadLengthOff && i < skOff+SKHeaderLen)
			want := ErrAuth
			if lengthField {
				want = ErrSKLength
			}
			if !errors.Is(err, want) || pt != nil {
				t.Fatalf("%v: bit %#x of byte %d flipped: Open = %d bytes, %v; want %v", sk, bit, i, len(pt), err, want)
			}
		}
	}
}

// TestSKRoundTrip seals and opens every transform at every plaintext length
// through two cipher blocks and a few larger, with and without an
// unencrypted payload before the SK payload, and checks the length Overhead
// predicts.
func TestSKRoundTrip(t *testing.T) {
	for _, c := range skConfigs() {
		sk := mustSK(t, c)
		for _, extra := range []int{0, 8} {
			for n := range 40 {
				roundTrip(t, sk, extra, n)
			}
			for _, n := range []int{200, 1000, 4096} {
				roundTrip(t, sk, extra, n)
			}
		}
		// The largest plaintext whose SK payload fits its 16-bit length.
		// Overhead(n) + n never decreases as n grows.
		n := maxPayloadLen
		for SKHeaderLen+sk.Overhead(n)+n > maxPayloadLen {
			n--
		}
		roundTrip(t, sk, 0, n)
		if _, err := sk.Seal(ikeHead(sk, 0, n+1), IKEHeaderLen, make([]byte, n+1)); !errors.Is(err, ErrSKLayout) {
			t.Errorf("%v: %d bytes past the largest SK payload: %v", sk, n+1, err)
		}
	}
}

func roundTrip(t *testing.T, sk *SK, extra, n int) {
	t.Helper()
	pt := make([]byte, n)
	for i := range pt {
		pt[i] = byte(i * 7)
	}
	head := ikeHead(sk, extra, n)
	msg := sealTestMessage(t, sk, extra, pt)
	if want := len(head) + sk.Overhead(n) + n; len(msg) != want {
		t.Fatalf("%v n=%d: %d-byte message, Overhead predicts %d", sk, n, len(msg), want)
	}
	if !bytes.Equal(msg[:len(head)], head) {
		t.Fatalf("%v n=%d: Seal changed the header", sk, n)
	}
	if sk.esp.kind == kindCBC && (len(msg)-len(head)-sk.esp.ivLen-sk.esp.icvLen)%16 != 0 {
		t.Fatalf("%v n=%d: ciphertext is not whole blocks", sk, n)
	}
	got, err := sk.Open(msg, len(head)-SKHeaderLen)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("%v n=%d extra=%d: Open = %d bytes, %v", sk, n, extra, len(got), err)
	}
}

// TestSKTamper flips bits everywhere in sealed messages of every transform:
// in the IKE header, the unencrypted payload, the SK header, the IV, the
// ciphertext, the padding and the ICV.
func TestSKTamper(t *testing.T) {
	for _, c := range skConfigs() {
		sk := mustSK(t, c)
		for _, n := range []int{0, 13, 33} {
			assertEveryFlipFails(t, sk, sealTestMessage(t, sk, 8, make([]byte, n)), IKEHeaderLen+8)
		}
	}
}

// TestSKMalformed: truncated, extended, mis-framed and misplaced messages
// fail with an error, never a panic, and release no plaintext.
func TestSKMalformed(t *testing.T) {
	for _, c := range skConfigs() {
		sk := mustSK(t, c)
		msg := sealTestMessage(t, sk, 0, []byte("0123456789abcdefghij"))
		try := func(what string, m []byte, skOff int) {
			t.Helper()
			pt, err := sk.Open(m, skOff)
			if err == nil || pt != nil {
				t.Errorf("%v: %s: Open = %x, %v", sk, what, pt, err)
			}
		}
		for n := range len(msg) {
			try(fmt.Sprintf("truncated to %d", n), bytes.Clone(msg[:n]), IKEHeaderLen)
			// Truncated with both lengths fixed up to match: the lengths
			// pass and the transform's checks must catch the rest.
			if n >= IKEHeaderLen+SKHeaderLen {
				m := bytes.Clone(msg[:n])
				binary.BigEndian.PutUint32(m[ikeLengthOff:], uint32(n))
				binary.BigEndian.PutUint16(m[IKEHeaderLen+payloadLengthOff:], uint16(n-IKEHeaderLen))
				try(fmt.Sprintf("truncated to %d, lengths fixed", n), m, IKEHeaderLen)
			}
		}
		try("one byte appended", append(bytes.Clone(msg), 0), IKEHeaderLen)
		for _, off := range []int{-1, 0, IKEHeaderLen - 1, IKEHeaderLen + 1, len(msg) - SKHeaderLen, len(msg) - 1, len(msg), len(msg) + 5, math.MaxInt, math.MinInt} {
			try(fmt.Sprintf("SK payload at %d", off), bytes.Clone(msg), off)
		}
		try("nil", nil, IKEHeaderLen)
	}
}

// TestSKPadding: a receiver accepts any padding that fits (RFC 7296 section
// 3.14, RFC 7634 section 3) and refuses a pad length longer than the
// plaintext, which only an authenticated sender can produce.
func TestSKPadding(t *testing.T) {
	for _, c := range skConfigs() {
		sk := mustSK(t, c)
		for _, tc := range []struct {
			pt      string
			pad     int
			wantErr error
		}{
			{"payloads", 0, nil},
			{"payloads", 16 + 7, nil},
			{"payloads", 255, nil},
			{"", 31, nil},
			{"payloads", -9, ErrSKPadLength}, // pad length byte says 9 more than there is
			{"payloads", -1, ErrSKPadLength}, // one more than there is
			{"0123456789abcde", -1, ErrSKPadLength},
		} {
			msg := sealRaw(t, sk, []byte(tc.pt), tc.pad)
			if msg == nil {
				continue // not a whole number of blocks for CBC
			}
			pt, err := sk.Open(msg, IKEHeaderLen)
			if !errors.Is(err, tc.wantErr) || (err == nil && string(pt) != tc.pt) {
				t.Errorf("%v: %q with %d bytes of padding: Open = %q, %v; want %v", sk, tc.pt, tc.pad, pt, err, tc.wantErr)
			}
		}
	}
}

// sealRaw builds a message as a peer with its own padding would: pt, then
// pad bytes of padding and a pad length byte of pad; with pad < 0 no
// padding and a pad length byte of len(pt) - pad. It returns nil where CBC
// would need a partial block.
func sealRaw(t *testing.T, sk *SK, pt []byte, pad int) []byte {
	t.Helper()
	padded := bytes.Clone(pt)
	if pad >= 0 {
		for i := range pad {
			padded = append(padded, byte(0xa0+i))
		}
		padded = append(padded, byte(pad))
	} else {
		padded = append(padded, byte(len(pt)-pad))
	}
	if sk.esp.kind == kindCBC {
		if len(padded)%16 != 0 {
			// make it whole blocks by growing the padding, keeping the
			// pad length byte last and its meaning
			if pad < 0 {
				return nil
			}
			more := pad + 16 - len(padded)%16
			if more > 255 {
				more = pad - len(padded)%16
			}
			return sealRaw(t, sk, pt, more)
		}
	}
	// Lay out for a plaintext of len(padded)-1 with no padding of ours,
	// then overwrite: Overhead's padding is the only thing that differs.
	total := IKEHeaderLen + SKHeaderLen + sk.esp.ivLen + len(padded) + sk.esp.icvLen
	msg := ikeHead(sk, 0, 0)
	binary.BigEndian.PutUint32(msg[ikeLengthOff:], uint32(total))
	binary.BigEndian.PutUint16(msg[IKEHeaderLen+payloadLengthOff:], uint16(total-IKEHeaderLen))
	iv := bytes.Repeat([]byte{0x42}, sk.esp.ivLen)
	msg = append(msg, iv...)
	msg = append(msg, padded...)
	s := NewScratch()
	ptOff := IKEHeaderLen + SKHeaderLen + len(iv)
	switch sk.esp.kind {
	case kindAEAD:
		return sk.esp.aead.Seal(msg[:ptOff], sk.esp.nonce(s, iv), msg[ptOff:], msg[:IKEHeaderLen+SKHeaderLen])
	case kindCBC:
		m := sk.esp.macs.Get().(*macState)
		defer sk.esp.macs.Put(m)
		m.enc.(ivSetter).SetIV(iv)
		m.enc.CryptBlocks(msg[ptOff:], msg[ptOff:])
		return append(msg, sk.esp.mac(s, m, msg, 0, false)...)
	}
	return nil
}

// TestSKSealLayout: Seal refuses a message that is not laid out for it,
// rather than authenticate lengths that do not match what it appends.
func TestSKSealLayout(t *testing.T) {
	sk := mustSK(t, skConfigs()[0])
	pt := []byte("payloads")
	good := func() []byte { return ikeHead(sk, 0, len(pt)) }
	for _, tc := range []struct {
		what  string
		msg   []byte
		skOff int
	}{
		{"SK header not last", append(good(), 0), IKEHeaderLen},
		{"SK payload inside the IKE header", good()[:IKEHeaderLen], IKEHeaderLen - SKHeaderLen},
		{"negative offset", good(), -4},
		{"huge offset", good(), math.MaxInt - 2},
		{"IKE Length off by one", func() []byte { m := good(); m[ikeLengthOff+3]++; return m }(), IKEHeaderLen},
		{"SK Payload Length off by one", func() []byte { m := good(); m[IKEHeaderLen+3]--; return m }(), IKEHeaderLen},
		{"nil", nil, IKEHeaderLen},
	} {
		if out, err := sk.Seal(tc.msg, tc.skOff, pt); !errors.Is(err, ErrSKLayout) || len(out) != len(tc.msg) {
			t.Errorf("%s: Seal = %d bytes, %v; want ErrSKLayout and the message untouched", tc.what, len(out), err)
		}
	}
}

// TestSKSealAliasing: the plaintext may already sit in the message's spare
// capacity, where the IV and ciphertext go, as a codec that writes inner
// payloads in place would leave it.
func TestSKSealAliasing(t *testing.T) {
	for _, c := range skConfigs() {
		sk := mustSK(t, c)
		want := []byte("inner payloads written in place, longer than a block")
		n := len(want)
		head := ikeHead(sk, 0, n)
		for _, at := range []int{0, 3, sk.esp.ivLen, sk.esp.ivLen + 1} {
			buf := make([]byte, len(head)+sk.Overhead(n)+n+8)
			copy(buf, head)
			pt := buf[len(head)+at : len(head)+at+n]
			copy(pt, want)
			msg, err := sk.Seal(buf[:len(head)], IKEHeaderLen, pt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sk.Open(msg, IKEHeaderLen)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%v: plaintext at +%d: Open = %q, %v", sk, at, got, err)
			}
		}
	}
}

// TestSKIVsNeverRepeat: the counter-mode transforms' IVs are distinct across
// concurrent sealers, and two SKs built from the same keys start apart.
func TestSKIVsNeverRepeat(t *testing.T) {
	for _, c := range []Config{skConfigs()[0], skConfigs()[len(skConfigs())-1]} {
		sk := mustSK(t, c)
		const workers, each = 4, 500
		var mu sync.Mutex
		seen := map[string]bool{}
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					msg, err := sk.Seal(ikeHead(sk, 0, 1), IKEHeaderLen, []byte("x"))
					if err != nil {
						t.Error(err)
						return
					}
					iv := string(msg[IKEHeaderLen+SKHeaderLen : IKEHeaderLen+SKHeaderLen+aeadIVLen])
					mu.Lock()
					if seen[iv] {
						t.Errorf("%v: IV %x repeated", sk, iv)
					}
					seen[iv] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != workers*each {
			t.Errorf("%v: %d distinct IVs of %d", sk, len(seen), workers*each)
		}
		again := mustSK(t, c)
		a, b := sealTestMessage(t, sk, 0, nil), sealTestMessage(t, again, 0, nil)
		if bytes.Equal(a[IKEHeaderLen+SKHeaderLen:][:8], b[IKEHeaderLen+SKHeaderLen:][:8]) {
			t.Errorf("%v: two SKs with the same keys made the same IV", sk)
		}
	}
}

// TestSKIVExhausted: after 2^64 - 1 messages Seal refuses, and keeps
// refusing instead of wrapping onto the first IV.
func TestSKIVExhausted(t *testing.T) {
	sk := mustSK(t, skConfigs()[0])
	sk.ivNext.Store(math.MaxUint64 - 1)
	sealTestMessage(t, sk, 0, nil)
	for range 3 {
		if _, err := sk.Seal(ikeHead(sk, 0, 0), IKEHeaderLen, nil); !errors.Is(err, ErrSKIVExhausted) {
			t.Fatalf("Seal after 2^64-1 messages: %v", err)
		}
	}
}

func TestSKCBCRandomIV(t *testing.T) {
	sk := mustSK(t, skConfigs()[3])
	a, b := sealTestMessage(t, sk, 0, nil), sealTestMessage(t, sk, 0, nil)
	iv := func(m []byte) []byte { return m[IKEHeaderLen+SKHeaderLen:][:16] }
	if bytes.Equal(iv(a), iv(b)) {
		t.Fatal("two CBC messages got the same IV")
	}
}

func TestNewSKRejects(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want error
	}{
		{Config{Encr: ENCR_NULL, Integ: AUTH_HMAC_SHA2_256_128, IntegKey: make([]byte, 32)}, ErrCombination},
		{Config{Encr: ENCR_NULL_AUTH_AES_GMAC, EncrKey: make([]byte, 20)}, ErrCombination},
		{Config{Encr: ENCR_AES_GCM_16, EncrKey: make([]byte, 16)}, ErrKeyLength}, // no salt
		{Config{Encr: ENCR_AES_CBC, EncrKey: make([]byte, 16)}, ErrCombination},
		{Config{Encr: ENCR_CHACHA20_POLY1305, EncrKey: make([]byte, 36), Integ: AUTH_HMAC_SHA2_256_128, IntegKey: make([]byte, 32)}, ErrCombination},
	} {
		if _, err := NewSK(tc.c); !errors.Is(err, tc.want) {
			t.Errorf("%v/%v: %v, want %v", tc.c.Encr, tc.c.Integ, err, tc.want)
		}
	}
}

// TestSKAgainstPyca has ike_check.py, which builds SK payloads from the RFCs
// with pyca/cryptography, open our messages of every transform, re-seal
// their plaintext with the same IV for a byte-exact comparison, and seal it
// again with padding of its own choosing, which we must open.
func TestSKAgainstPyca(t *testing.T) {
	type pyCase struct {
		Encr     string `json:"encr"`
		Key      string `json:"key"`
		Integ    string `json:"integ"`
		IntegKey string `json:"integ_key"`
		ICVLen   int    `json:"icv_len"`
		Msg      string `json:"msg"`
		SKOff    int    `json:"sk_off"`
	}
	encrName := map[EncrID]string{ENCR_AES_CBC: "aes-cbc", ENCR_AES_GCM_16: "aes-gcm", ENCR_CHACHA20_POLY1305: "chacha20-poly1305"}
	integName := map[IntegID]string{AUTH_HMAC_SHA2_256_128: "sha256", AUTH_HMAC_SHA2_384_192: "sha384", AUTH_HMAC_SHA2_512_256: "sha512"}
	var cases []pyCase
	var sks []*SK
	var pts [][]byte
	for _, c := range skConfigs() {
		sk := mustSK(t, c)
		for _, n := range []int{0, 1, 15, 16, 200} {
			pt := bytes.Repeat([]byte{byte(n + 1)}, n)
			extra := n % 3 * 4
			msg := sealTestMessage(t, sk, extra, pt)
			cases = append(cases, pyCase{encrName[c.Encr], hex.EncodeToString(c.EncrKey), integName[c.Integ],
				hex.EncodeToString(c.IntegKey), sk.esp.icvLen, hex.EncodeToString(msg), IKEHeaderLen + extra})
			sks, pts = append(sks, sk), append(pts, pt)
		}
	}
	var res []struct {
		AuthOK    bool   `json:"auth_ok"`
		Plaintext string `json:"plaintext"`
		Resealed  string `json:"resealed"`
		Padded    string `json:"padded"`
	}
	pyIKECheck(t, "sk", "cryptography.hazmat.primitives.ciphers.aead", cases, &res)
	if len(res) != len(cases) {
		t.Fatalf("%d answers for %d cases", len(res), len(cases))
	}
	for i, r := range res {
		sk, c := sks[i], cases[i]
		if !r.AuthOK || r.Plaintext != hex.EncodeToString(pts[i]) {
			t.Errorf("%v n=%d: pyca: integrity %v, plaintext %s", sk, len(pts[i]), r.AuthOK, r.Plaintext)
		}
		if r.Resealed != c.Msg {
			t.Errorf("%v n=%d: pyca sealed the same plaintext with the same IV as\n%s\nwe did\n%s", sk, len(pts[i]), r.Resealed, c.Msg)
		}
		padded, _ := hex.DecodeString(r.Padded)
		pt, err := sk.Open(padded, c.SKOff)
		if err != nil || !bytes.Equal(pt, pts[i]) {
			t.Errorf("%v n=%d: pyca's message with its own padding: Open = %x, %v", sk, len(pts[i]), pt, err)
		}
	}
}

func TestSKAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	for _, c := range skConfigs() {
		sk := mustSK(t, c)
		pt := make([]byte, 200)
		head := ikeHead(sk, 0, len(pt))
		buf := make([]byte, 0, len(head)+sk.Overhead(len(pt))+len(pt))
		allocs := testing.AllocsPerRun(100, func() {
			msg, err := sk.Seal(append(buf[:0], head...), IKEHeaderLen, pt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sk.Open(msg, IKEHeaderLen); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per Seal+Open, want 0", sk, allocs)
		}
	}
}

// FuzzSKOpen feeds Open arbitrary messages and SK offsets for every
// transform. Open must never panic, must release no plaintext on failure,
// and must accept nothing but the messages we sealed: every byte of a
// message is authenticated, so any other success is a forgery. With fix set
// the fuzzer's message gets the IKE Length and SK Payload Length that frame
// it, so that mutations reach the transform's own checks.
func FuzzSKOpen(f *testing.F) {
	type sealed struct {
		which int
		msg   string
	}
	var sks []*SK
	valid := map[sealed]bool{}
	for i, c := range skConfigs() {
		sk := mustSK(f, c)
		sks = append(sks, sk)
		for _, n := range []int{0, 5, 40} {
			extra := n % 16
			head := ikeHead(sk, extra, n)
			iv := bytes.Repeat([]byte{byte(i)}, sk.esp.ivLen)
			msg, err := sk.seal(head, IKEHeaderLen+extra, make([]byte, n), iv)
			if err != nil {
				f.Fatal(err)
			}
			valid[sealed{i, string(msg)}] = true
			f.Add(uint8(i), uint16(IKEHeaderLen+extra), false, msg)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, skOff uint16, fix bool, msg []byte) {
		i := int(which) % len(sks)
		msg = bytes.Clone(msg)
		if off := int(skOff); fix && off >= IKEHeaderLen && off+SKHeaderLen <= len(msg) {
			binary.BigEndian.PutUint32(msg[ikeLengthOff:], uint32(len(msg)))
			binary.BigEndian.PutUint16(msg[off+payloadLengthOff:], uint16(len(msg)-off))
		}
		pt, err := sks[i].Open(bytes.Clone(msg), int(skOff))
		if err != nil && pt != nil {
			t.Fatal("plaintext released on failure")
		}
		if err == nil && !valid[sealed{i, string(msg)}] {
			t.Fatalf("%v accepted a message it did not seal: %x", sks[i], msg)
		}
	})
}

func benchSK(b *testing.B, open bool) {
	const n = 200
	for _, c := range []Config{skConfigs()[0], skConfigs()[2], skConfigs()[len(skConfigs())-1], skConfigs()[3], skConfigs()[11]} {
		sk := mustSK(b, c)
		pt := make([]byte, n)
		head := ikeHead(sk, 0, n)
		sealed := sealTestMessage(b, sk, 0, pt)
		buf := make([]byte, 0, len(sealed))
		b.Run(sk.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(n)
			for b.Loop() {
				if open {
					if _, err := sk.Open(append(buf[:0], sealed...), IKEHeaderLen); err != nil {
						b.Fatal(err)
					}
				} else if _, err := sk.Seal(append(buf[:0], head...), IKEHeaderLen, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSKSeal and BenchmarkSKOpen protect a 200-byte plaintext, the size
// of a CREATE_CHILD_SA request without KE payload.
func BenchmarkSKSeal(b *testing.B) { benchSK(b, false) }
func BenchmarkSKOpen(b *testing.B) { benchSK(b, true) }
