package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// ikeSuites covers every transform combination the SK payload accepts.
func ikeSuites() []IKESuite {
	var s []IKESuite
	for _, bits := range []int{128, 192, 256} {
		s = append(s, IKESuite{Encr: ENCR_AES_GCM_16, EncrKeyBits: bits, PRF: PRF_HMAC_SHA2_256})
		for _, integ := range []IntegID{AUTH_HMAC_SHA2_256_128, AUTH_HMAC_SHA2_384_192, AUTH_HMAC_SHA2_512_256} {
			s = append(s, IKESuite{Encr: ENCR_AES_CBC, EncrKeyBits: bits, Integ: integ, PRF: PRF_HMAC_SHA2_384})
		}
	}
	return append(s,
		IKESuite{Encr: ENCR_CHACHA20_POLY1305, PRF: PRF_HMAC_SHA2_512},
		IKESuite{Encr: ENCR_CHACHA20_POLY1305, EncrKeyBits: 256, PRF: PRF_HMAC_SHA2_256},
	)
}

// testIKEKeys derives keys for s from fixed inputs.
func testIKEKeys(tb testing.TB, s IKESuite) *IKEKeys {
	tb.Helper()
	p := mustPRF(tb, s.PRF)
	ni, nr := bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x22}, 32)
	k, err := DeriveIKEKeys(s, DeriveSKEYSEED(p, ni, nr, []byte("g^ir")), ni, nr, 0x0102030405060708, 0x1112131415161718)
	if err != nil {
		tb.Fatalf("DeriveIKEKeys(%v): %v", s, err)
	}
	return k
}

func TestDeriveIKEKeysLengths(t *testing.T) {
	for _, tc := range []struct {
		s       IKESuite
		d, a, e int
	}{
		{IKESuite{Encr: ENCR_AES_GCM_16, EncrKeyBits: 256, PRF: PRF_HMAC_SHA2_256}, 32, 0, 36},
		{IKESuite{Encr: ENCR_AES_GCM_16, EncrKeyBits: 128, PRF: PRF_HMAC_SHA2_512}, 64, 0, 20},
		{IKESuite{Encr: ENCR_CHACHA20_POLY1305, PRF: PRF_HMAC_SHA2_384}, 48, 0, 36},
		{IKESuite{Encr: ENCR_AES_CBC, EncrKeyBits: 128, Integ: AUTH_HMAC_SHA2_384_192, PRF: PRF_HMAC_SHA2_256}, 32, 48, 16},
		{IKESuite{Encr: ENCR_AES_CBC, EncrKeyBits: 256, Integ: AUTH_HMAC_SHA2_512_256, PRF: PRF_HMAC_SHA2_512}, 64, 64, 32},
	} {
		k := testIKEKeys(t, tc.s)
		got := []int{len(k.SKd), len(k.SKai), len(k.SKar), len(k.SKei), len(k.SKer), len(k.SKpi), len(k.SKpr)}
		want := []int{tc.d, tc.a, tc.a, tc.e, tc.e, tc.d, tc.d}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%v: key lengths %v, want %v", tc.s, got, want)
		}
		// Keys are cut with their capacity capped, so that appending to
		// one cannot overwrite the next.
		for _, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
			if cap(b) != len(b) {
				t.Errorf("%v: a %d-byte key has capacity %d", tc.s, len(b), cap(b))
			}
		}
	}
}

func TestDeriveIKEKeysRejects(t *testing.T) {
	for _, tc := range []struct {
		s    IKESuite
		want error
	}{
		{IKESuite{Encr: ENCR_NULL, Integ: AUTH_HMAC_SHA2_256_128, PRF: PRF_HMAC_SHA2_256}, ErrCombination},
		{IKESuite{Encr: ENCR_NULL_AUTH_AES_GMAC, EncrKeyBits: 128, PRF: PRF_HMAC_SHA2_256}, ErrCombination},
		{IKESuite{Encr: ENCR_AES_GCM_16, PRF: PRF_HMAC_SHA2_256}, ErrKeyLength},
		{IKESuite{Encr: ENCR_AES_CBC, EncrKeyBits: 100, Integ: AUTH_HMAC_SHA2_256_128, PRF: PRF_HMAC_SHA2_256}, ErrKeyLength},
		{IKESuite{Encr: ENCR_CHACHA20_POLY1305, EncrKeyBits: 128, PRF: PRF_HMAC_SHA2_256}, ErrKeyLength},
		{IKESuite{Encr: ENCR_AES_GCM_16, EncrKeyBits: 128, Integ: AUTH_HMAC_SHA2_256_128, PRF: PRF_HMAC_SHA2_256}, ErrCombination},
		{IKESuite{Encr: ENCR_AES_CBC, EncrKeyBits: 128, PRF: PRF_HMAC_SHA2_256}, ErrCombination},
		{IKESuite{Encr: ENCR_AES_CBC, EncrKeyBits: 128, Integ: 2, PRF: PRF_HMAC_SHA2_256}, ErrUnknownTransform},
		{IKESuite{Encr: ENCR_AES_GCM_16, EncrKeyBits: 128, PRF: 2}, ErrUnknownTransform},
		{IKESuite{Encr: 3, PRF: PRF_HMAC_SHA2_256}, ErrCombination},
	} {
		if _, err := DeriveIKEKeys(tc.s, make([]byte, 32), nil, nil, 1, 2); !errors.Is(err, tc.want) {
			t.Errorf("%v: %v, want %v", tc.s, err, tc.want)
		}
	}
}

// TestIKEKeysSKs: each end's outbound SK is the other's inbound one, and the
// two directions use different keys.
func TestIKEKeysSKs(t *testing.T) {
	for _, s := range ikeSuites() {
		k := testIKEKeys(t, s)
		iOut, iIn, err := k.SKs(true)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		rOut, rIn, err := k.SKs(false)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		for _, dir := range []struct {
			name    string
			out, in *SK
			notIn   *SK
		}{{"i->r", iOut, rIn, iIn}, {"r->i", rOut, iIn, rIn}} {
			msg := sealTestMessage(t, dir.out, 0, []byte("payloads"))
			if _, err := dir.notIn.Open(bytes.Clone(msg), IKEHeaderLen); !errors.Is(err, ErrAuth) {
				t.Errorf("%v %s: the sender's own inbound SK opened it: %v", s, dir.name, err)
			}
			pt, err := dir.in.Open(msg, IKEHeaderLen)
			if err != nil || string(pt) != "payloads" {
				t.Errorf("%v %s: %q, %v", s, dir.name, pt, err)
			}
		}
	}
}

// childTemplates covers every ESP transform, with the key length attribute
// IKE negotiates.
func childTemplates() []Config {
	return []Config{
		{Encr: ENCR_AES_GCM_16, EncrKeyBits: 128},
		{Encr: ENCR_AES_GCM_16, EncrKeyBits: 256},
		{Encr: ENCR_NULL_AUTH_AES_GMAC, EncrKeyBits: 192},
		{Encr: ENCR_CHACHA20_POLY1305},
		{Encr: ENCR_AES_CBC, EncrKeyBits: 128, Integ: AUTH_HMAC_SHA2_256_128},
		{Encr: ENCR_AES_CBC, EncrKeyBits: 256, Integ: AUTH_HMAC_SHA2_512_256},
		{Encr: ENCR_NULL, Integ: AUTH_HMAC_SHA2_384_192},
	}
}

// TestDeriveChildKeys: KEYMAT is split as RFC 7296 section 2.17 orders it
// (initiator to responder encryption then integrity key, then the other
// direction), every derived Config is one NewESP accepts, and InOut gives
// the two ends mirrored SAs. KEYMAT itself is checked against Python in
// TestChildKeysAgainstPython.
func TestDeriveChildKeys(t *testing.T) {
	p := mustPRF(t, PRF_HMAC_SHA2_256)
	skd, ni, nr, gir := []byte("SK_d"), []byte("Ni"), []byte("Nr"), []byte("g^ir new")
	for _, tmpl := range childTemplates() {
		for _, pfs := range [][]byte{nil, gir} {
			k, err := DeriveChildKeys(p, skd, pfs, ni, nr, tmpl)
			if err != nil {
				t.Fatalf("%v/%v: %v", tmpl.Encr, tmpl.Integ, err)
			}
			all := bytes.Join([][]byte{k.I2R.EncrKey, k.I2R.IntegKey, k.R2I.EncrKey, k.R2I.IntegKey}, nil)
			keymat, _ := p.Plus(skd, len(all), pfs, ni, nr)
			if !bytes.Equal(all, keymat) {
				t.Errorf("%v/%v pfs=%v: keys are not KEYMAT in order", tmpl.Encr, tmpl.Integ, pfs != nil)
			}
			for _, c := range []Config{k.I2R, k.R2I} {
				if _, err := NewESP(c); err != nil {
					t.Errorf("%v/%v: NewESP refuses a derived key: %v", tmpl.Encr, tmpl.Integ, err)
				}
			}
			iIn, iOut := k.InOut(true)
			rIn, rOut := k.InOut(false)
			if !sameConfig(iOut, rIn) || !sameConfig(rOut, iIn) || !sameConfig(iOut, k.I2R) {
				t.Errorf("%v/%v: InOut does not mirror the two ends", tmpl.Encr, tmpl.Integ)
			}
		}
	}
	k1, _ := DeriveChildKeys(p, skd, nil, ni, nr, childTemplates()[0])
	k2, _ := DeriveChildKeys(p, skd, gir, ni, nr, childTemplates()[0])
	if bytes.Equal(k1.I2R.EncrKey, k2.I2R.EncrKey) {
		t.Error("PFS shared secret does not change KEYMAT")
	}
}

func sameConfig(a, b Config) bool {
	return a.Encr == b.Encr && a.EncrKeyBits == b.EncrKeyBits && a.Integ == b.Integ &&
		bytes.Equal(a.EncrKey, b.EncrKey) && bytes.Equal(a.IntegKey, b.IntegKey)
}

func TestDeriveChildKeysRejects(t *testing.T) {
	p := mustPRF(t, PRF_HMAC_SHA2_256)
	for _, tc := range []struct {
		c    Config
		want error
	}{
		{Config{Encr: ENCR_AES_GCM_16}, ErrKeyLength}, // no key length attribute
		{Config{Encr: ENCR_AES_GCM_16, EncrKeyBits: 128, EncrKey: []byte{1}}, ErrKeyLength},
		{Config{Encr: ENCR_AES_CBC, EncrKeyBits: 128, Integ: AUTH_HMAC_SHA2_256_128, IntegKey: []byte{1}}, ErrKeyLength},
		{Config{Encr: ENCR_NULL, EncrKeyBits: 128, Integ: AUTH_HMAC_SHA2_256_128}, ErrKeyLength},
		{Config{Encr: ENCR_CHACHA20_POLY1305, Integ: AUTH_HMAC_SHA2_256_128}, ErrCombination},
		{Config{Encr: ENCR_NULL}, ErrCombination},
		{Config{Encr: 99}, ErrUnknownTransform},
	} {
		if _, err := DeriveChildKeys(p, []byte("SK_d"), nil, nil, nil, tc.c); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.c.Encr, err, tc.want)
		}
	}
}

// TestChildKeysAgainstPython checks KEYMAT with and without PFS against
// ike_check.py's prf+, and the split against RFC 7296 section 2.17's order
// applied to Python's output.
func TestChildKeysAgainstPython(t *testing.T) {
	type pyCase struct {
		Hash string `json:"hash"`
		Key  string `json:"key"`
		Seed string `json:"seed"`
		N    int    `json:"n"`
	}
	names := map[PRFID]string{PRF_HMAC_SHA2_256: "sha256", PRF_HMAC_SHA2_384: "sha384", PRF_HMAC_SHA2_512: "sha512"}
	var cases []pyCase
	var keys []*ChildKeys
	for i, tmpl := range childTemplates() {
		id := allPRFs[i%len(allPRFs)]
		p := mustPRF(t, id)
		skd := bytes.Repeat([]byte{byte(i)}, p.Size())
		ni, nr := bytes.Repeat([]byte{0xa0 + byte(i)}, 16+i), bytes.Repeat([]byte{0xb0}, 32)
		for _, gir := range [][]byte{nil, bytes.Repeat([]byte{0xc0}, 256)} {
			k, err := DeriveChildKeys(p, skd, gir, ni, nr, tmpl)
			if err != nil {
				t.Fatal(err)
			}
			n := 2 * (len(k.I2R.EncrKey) + len(k.I2R.IntegKey))
			seed := append(append(append([]byte(nil), gir...), ni...), nr...)
			cases = append(cases, pyCase{names[id], hex.EncodeToString(skd), hex.EncodeToString(seed), n})
			keys = append(keys, k)
		}
	}
	var res []string
	pyIKECheck(t, "prfplus", "hmac", cases, &res)
	for i, r := range res {
		km, _ := hex.DecodeString(r)
		k := keys[i]
		e, a := len(k.I2R.EncrKey), len(k.I2R.IntegKey)
		if len(km) != 2*(e+a) ||
			!bytes.Equal(k.I2R.EncrKey, km[:e]) || !bytes.Equal(k.I2R.IntegKey, km[e:e+a]) ||
			!bytes.Equal(k.R2I.EncrKey, km[e+a:2*e+a]) || !bytes.Equal(k.R2I.IntegKey, km[2*e+a:]) {
			t.Errorf("case %d (%v/%v): keys do not split Python's KEYMAT %s", i, k.I2R.Encr, k.I2R.Integ, r)
		}
	}
}

func TestWipe(t *testing.T) {
	k := testIKEKeys(t, ikeSuites()[0])
	k.Wipe()
	for _, b := range [][]byte{k.SKd, k.SKei, k.SKer, k.SKpi, k.SKpr} {
		if !bytes.Equal(b, make([]byte, len(b))) || len(b) == 0 {
			t.Errorf("key %x not wiped", b)
		}
	}
	c, _ := DeriveChildKeys(mustPRF(t, PRF_HMAC_SHA2_256), []byte("d"), nil, nil, nil, childTemplates()[4])
	c.Wipe()
	if !bytes.Equal(c.R2I.IntegKey, make([]byte, 32)) {
		t.Errorf("child key %x not wiped", c.R2I.IntegKey)
	}
}

// TestKeysNeverPrinted prints every key-holding type with every verb that
// could show bytes, directly, by pointer, inside a struct, and through
// log/slog's handlers, and wants no key in any output.
func TestKeysNeverPrinted(t *testing.T) {
	k := testIKEKeys(t, IKESuite{Encr: ENCR_AES_CBC, EncrKeyBits: 128, Integ: AUTH_HMAC_SHA2_256_128, PRF: PRF_HMAC_SHA2_256})
	c, _ := DeriveChildKeys(mustPRF(t, PRF_HMAC_SHA2_256), k.SKd, nil, []byte("n"), []byte("r"), childTemplates()[4])
	ke, _ := NewKeyExchange(ECP_256)
	modp, _ := NewKeyExchange(MODP_2048)
	out, _, _ := k.SKs(true)
	secrets := [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr,
		c.I2R.EncrKey, c.I2R.IntegKey, c.R2I.EncrKey, c.R2I.IntegKey,
		ke.(*ecdhKE).priv.Bytes(), modp.(*modpKE).x}
	type holder struct {
		Keys  IKEKeys
		Child ChildKeys
		KE    KeyExchange
	}
	values := []any{k, *k, c, *c, ke, modp, out, holder{*k, *c, ke}, &holder{*k, *c, modp}}
	var printed []string
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			printed = append(printed, fmt.Sprintf(verb, v))
		}
		printed = append(printed, fmt.Sprint(v), fmt.Sprintln(v))
		if b, err := json.Marshal(v); err == nil {
			printed = append(printed, string(b))
		}
		for _, asJSON := range []bool{false, true} {
			var buf bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&buf, nil)
			if asJSON {
				h = slog.NewJSONHandler(&buf, nil)
			}
			slog.New(h).Info("keys", "v", v)
			printed = append(printed, buf.String())
		}
	}
	for _, p := range printed {
		if strings.Contains(p, "0x") && strings.Contains(p, "[]uint8{") {
			t.Errorf("printed raw bytes: %s", p)
		}
		for _, s := range secrets {
			if len(s) < 6 {
				continue
			}
			for _, form := range []string{hex.EncodeToString(s[:4]), strings.ToUpper(hex.EncodeToString(s[:4])),
				base64.StdEncoding.EncodeToString(s[:6]),
				strings.Trim(fmt.Sprint(s[:4]), "[]"), fmt.Sprintf("%#x, %#x, %#x, %#x", s[0], s[1], s[2], s[3])} {
				if strings.Contains(p, form) {
					t.Errorf("output shows key bytes %s: %.300s", form, p)
				}
			}
		}
	}
}
