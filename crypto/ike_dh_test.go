package crypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
)

// ecpKAT is a test vector of RFC 5903 section 8: private keys i and r, public
// values g^i and g^r as x | y (the KE data, which the RFC also prints inside
// whole KE payloads), and g^ir's x coordinate, the shared secret.
type ecpKAT struct {
	method                   KEID
	i, gix, giy, r, grx, gry string
	girx                     string
}

var rfc5903KATs = []ecpKAT{
	{
		// RFC 5903 section 8.1, 256-Bit Random ECP Group.
		method: ECP_256,
		i:      "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
		gix:    "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180",
		giy:    "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
		r:      "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
		grx:    "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63",
		gry:    "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
		girx:   "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
	},
	{
		// RFC 5903 section 8.2, 384-Bit Random ECP Group.
		method: ECP_384,
		i: `099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655
		    E35B5380 41E649EE 3FAEF896 783AB194`,
		gix: `667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6
		      DE3AC808 ACB4BDB4 C88732AE E95F41AA`,
		giy: `9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E
		      EB9FCFF3 C2C947DA E69B4C63 4573A81C`,
		r: `41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942
		    E0308312 916B8ED2 960E4BD5 5A7448FC`,
		grx: `E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D
		      0D1AC43A 0336DEF9 6FDA41D0 774A3571`,
		gry: `DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF
		      F83FA401 42209DFF 5EAAD96D B9E6386C`,
		girx: `11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4
		       D6031355 69B9E9D0 9CF5D4A2 70F59746`,
	},
}

// kexFromPrivate builds the key exchange of an ECP or Curve25519 method from
// a known private key.
func kexFromPrivate(tb testing.TB, m KEID, priv []byte) *ecdhKE {
	tb.Helper()
	c, coord := ecdhCurve(m)
	k, err := c.NewPrivateKey(priv)
	if err != nil {
		tb.Fatalf("%v private key: %v", m, err)
	}
	return newECDHKE(m, k, coord)
}

func TestECPRFC5903(t *testing.T) {
	for _, v := range rfc5903KATs {
		t.Run(v.method.String(), func(t *testing.T) {
			ki := kexFromPrivate(t, v.method, unhex(t, v.i))
			kr := kexFromPrivate(t, v.method, unhex(t, v.r))
			gi, gr := unhex(t, v.gix+v.giy), unhex(t, v.grx+v.gry)
			if !bytes.Equal(ki.Public(), gi) {
				t.Errorf("initiator KE data %x, want g^i = %x", ki.Public(), gi)
			}
			if !bytes.Equal(kr.Public(), gr) {
				t.Errorf("responder KE data %x, want g^r = %x", kr.Public(), gr)
			}
			want := unhex(t, v.girx)
			for _, c := range []struct {
				name string
				k    *ecdhKE
				peer []byte
			}{{"initiator", ki, gr}, {"responder", kr, gi}} {
				s, err := c.k.SharedSecret(c.peer)
				if err != nil || !bytes.Equal(s, want) {
					t.Errorf("%s: g^ir = %x, %v; want girx %x", c.name, s, err, want)
				}
			}
			assertKERejects(t, ki, map[string][]byte{
				"empty":               nil,
				"x only":              gr[:len(gr)/2],
				"SEC1 0x04 prefix":    append([]byte{4}, gr...),
				"one byte short":      gr[1:],
				"point off the curve": flipLast(gr),
				"all zero":            make([]byte, len(gr)),
				"all ones":            bytes.Repeat([]byte{0xff}, len(gr)),
			})
		})
	}
}

func flipLast(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 1
	return b
}

func assertKERejects(t *testing.T, k KeyExchange, bad map[string][]byte) {
	t.Helper()
	for what, peer := range bad {
		s, err := k.SharedSecret(peer)
		if !errors.Is(err, ErrKEPeer) || s != nil {
			t.Errorf("%v, peer data %s: %x, %v; want ErrKEPeer", k.Method(), what, s, err)
		}
	}
}

// TestX25519RFC7748 uses RFC 7748 section 6.1's Alice and Bob, whose keys
// RFC 8031 makes the KE data of Curve25519 as they are.
func TestX25519RFC7748(t *testing.T) {
	alice := kexFromPrivate(t, CURVE25519, unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	bob := kexFromPrivate(t, CURVE25519, unhex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
	alicePub := unhex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	bobPub := unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	want := unhex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
	if !bytes.Equal(alice.Public(), alicePub) || !bytes.Equal(bob.Public(), bobPub) {
		t.Errorf("public keys %x, %x", alice.Public(), bob.Public())
	}
	for _, c := range []struct {
		k    *ecdhKE
		peer []byte
	}{{alice, bobPub}, {bob, alicePub}} {
		if s, err := c.k.SharedSecret(c.peer); err != nil || !bytes.Equal(s, want) {
			t.Errorf("K = %x, %v; want %x", s, err, want)
		}
	}
	// RFC 8031: a shared secret of all zeros is refused. These
	// u coordinates are of small order (0, 1, and a point of order 8 from
	// the small-order list that libsodium refuses too), so every private key makes
	// the zero secret of them.
	assertKERejects(t, alice, map[string][]byte{
		"u=0":      make([]byte, 32),
		"u=1":      append([]byte{1}, make([]byte, 31)...),
		"order 8":  unhex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
		"31 bytes": bobPub[1:],
		"33 bytes": append(bytes.Clone(bobPub), 0),
		"empty":    nil,
	})
}

// TestKeyExchangeRoundTrip: for every method two fresh keys agree, and fresh
// keys differ.
func TestKeyExchangeRoundTrip(t *testing.T) {
	for m, pubLen := range map[KEID]int{MODP_2048: 256, ECP_256: 64, ECP_384: 96, CURVE25519: 32} {
		a, err := NewKeyExchange(m)
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		b, _ := NewKeyExchange(m)
		if a.Method() != m || len(a.Public()) != pubLen {
			t.Errorf("%v: method %v, %d-byte public value, want %d", m, a.Method(), len(a.Public()), pubLen)
		}
		if bytes.Equal(a.Public(), b.Public()) {
			t.Errorf("%v: two fresh keys have the same public value", m)
		}
		sa, errA := a.SharedSecret(b.Public())
		sb, errB := b.SharedSecret(a.Public())
		if errA != nil || errB != nil || !bytes.Equal(sa, sb) {
			t.Errorf("%v: shared secrets %x (%v) and %x (%v) differ", m, sa, errA, sb, errB)
		}
		if want := map[KEID]int{MODP_2048: 256, ECP_256: 32, ECP_384: 48, CURVE25519: 32}[m]; len(sa) != want {
			t.Errorf("%v: %d-byte shared secret, want %d", m, len(sa), want)
		}
	}
	for _, m := range []KEID{0, 2, 5, 15, 21, 32} {
		if _, err := NewKeyExchange(m); !errors.Is(err, ErrUnknownTransform) {
			t.Errorf("NewKeyExchange(%v) = %v, want ErrUnknownTransform", m, err)
		}
	}
}

// TestMODPPrime checks the transcription of RFC 3526's prime against its
// properties: 2048 bits, 64 ones at each end, a safe prime. ike_check.py
// also rebuilds it from the RFC's formula (TestMODPAgainstPython).
func TestMODPPrime(t *testing.T) {
	p := new(big.Int).SetBytes(modp2048P)
	if p.BitLen() != 2048 {
		t.Fatalf("p has %d bits", p.BitLen())
	}
	ones := new(big.Int).SetUint64(^uint64(0))
	if new(big.Int).Rsh(p, 2048-64).Cmp(ones) != 0 || new(big.Int).And(p, ones).Cmp(ones) != 0 {
		t.Error("p does not start and end with 64 one bits")
	}
	q := new(big.Int).Rsh(p, 1)
	if !p.ProbablyPrime(8) || !q.ProbablyPrime(8) {
		t.Error("p is not a safe prime")
	}
}

// TestMODPRejects: RFC 7296 section 3.4 wants the KE data exactly as long as
// p; RFC 6989 wants 1 < y < p-1.
func TestMODPRejects(t *testing.T) {
	k, _ := NewKeyExchange(MODP_2048)
	p := new(big.Int).SetBytes(modp2048P)
	val := func(v *big.Int) []byte { return v.FillBytes(make([]byte, 256)) }
	one := big.NewInt(1)
	assertKERejects(t, k, map[string][]byte{
		"0":         val(big.NewInt(0)),
		"1":         val(one),
		"p-1":       val(new(big.Int).Sub(p, one)),
		"p":         val(p),
		"p+1":       val(new(big.Int).Add(p, one)),
		"2^2048-1":  bytes.Repeat([]byte{0xff}, 256),
		"257 bytes": append([]byte{0}, val(big.NewInt(2))...),
		"255 bytes": val(big.NewInt(2))[1:],
		"empty":     nil,
	})
	for _, y := range []*big.Int{big.NewInt(2), new(big.Int).Sub(p, big.NewInt(2))} {
		if _, err := k.SharedSecret(val(y)); err != nil {
			t.Errorf("y = %x refused: %v", y, err)
		}
	}
}

// TestMODPAgainstPython checks g^x and y^x against Python's pow() with the
// prime ike_check.py computes from RFC 3526's formula, 2^2048 - 2^1984 - 1 +
// 2^64 * ([2^1918 pi] + 124476), with its own digits of pi.
func TestMODPAgainstPython(t *testing.T) {
	type pyCase struct {
		X    string `json:"x"`
		Peer string `json:"peer"`
	}
	var cases []pyCase
	var keys []*modpKE
	var peers [][]byte
	for i := range 4 {
		x := bytes.Repeat([]byte{byte(0x31 * (i + 1))}, modpExpLen)
		x[0] = byte(i) // including an exponent with a leading zero byte
		k := newMODPKE(x)
		peer, _ := NewKeyExchange(MODP_2048)
		cases = append(cases, pyCase{hex.EncodeToString(x), hex.EncodeToString(peer.Public())})
		keys, peers = append(keys, k), append(peers, peer.Public())
	}
	var res struct {
		P     string `json:"p"`
		Cases []struct {
			Pub    string `json:"pub"`
			Shared string `json:"shared"`
		} `json:"cases"`
	}
	pyIKECheck(t, "modp", "hmac", cases, &res)
	if res.P != hex.EncodeToString(modp2048P) {
		t.Errorf("p from RFC 3526's formula is\n%s\nours\n%x", res.P, modp2048P)
	}
	for i, c := range res.Cases {
		s, err := keys[i].SharedSecret(peers[i])
		if err != nil {
			t.Fatal(err)
		}
		if c.Pub != hex.EncodeToString(keys[i].Public()) || c.Shared != hex.EncodeToString(s) {
			t.Errorf("case %d: ours g^x %x y^x %x\npython %s %s", i, keys[i].Public(), s, c.Pub, c.Shared)
		}
	}
}

func BenchmarkKeyExchange(b *testing.B) {
	for _, m := range []KEID{MODP_2048, ECP_256, ECP_384, CURVE25519} {
		peer, _ := NewKeyExchange(m)
		b.Run(m.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k, err := NewKeyExchange(m)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := k.SharedSecret(peer.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
