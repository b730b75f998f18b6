package crypto

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"

	"filippo.io/bigmod"
)

// ErrKEPeer is returned for a peer's key exchange data that is the wrong
// length or not a valid public value of the method: a point off the curve,
// a MODP value outside 1 < y < p-1, an X25519 point of small order.
var ErrKEPeer = errors.New("invalid peer key exchange data")

// KeyExchange is one end's ephemeral key for one key exchange: a KE payload
// sent and a shared secret computed from the peer's. Make a new one for
// every exchange (RFC 7296 section 2.12 allows reuse; espx does not reuse).
// Implementations are safe for concurrent use and never print their private
// key.
type KeyExchange interface {
	// Method is the Key Exchange Method ID of the KE payload.
	Method() KEID
	// Public is the Key Exchange Data of the KE payload, RFC 7296 section
	// 3.4, in the method's own encoding. The caller must not modify it.
	Public() []byte
	// SharedSecret checks the peer's Key Exchange Data and returns g^ir,
	// the input to SKEYSEED. It fails with ErrKEPeer on invalid data.
	SharedSecret(peer []byte) ([]byte, error)
}

// NewKeyExchange makes a fresh private key for the method.
func NewKeyExchange(m KEID) (KeyExchange, error) {
	switch m {
	case ECP_256, ECP_384, CURVE25519:
		c, coord := ecdhCurve(m)
		priv, err := c.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("%v key: %w", m, err)
		}
		return newECDHKE(m, priv, coord), nil
	case MODP_2048:
		return newMODPKE(nil), nil
	}
	return nil, fmt.Errorf("%w: key exchange method %v", ErrUnknownTransform, m)
}

// ecdhCurve is the crypto/ecdh curve of a method and its coordinate length.
func ecdhCurve(m KEID) (ecdh.Curve, int) {
	switch m {
	case ECP_256:
		return ecdh.P256(), 32
	case ECP_384:
		return ecdh.P384(), 48
	case CURVE25519:
		return ecdh.X25519(), 32
	}
	return nil, 0
}

// ecdhKE is an ECP group of RFC 5903 or Curve25519 of RFC 8031.
//
// RFC 5903 section 7: the KE data of an ECP group is x | y, each as long as
// the field, without SEC1's 0x04 prefix, and the shared secret is the x
// coordinate of the product alone (as crypto/ecdh computes it). RFC 8031:
// the KE data of Curve25519 is the 32-byte u coordinate of RFC 7748, and
// the shared secret must not be all zeros, which crypto/ecdh checks (its
// X25519 ECDH fails on the small-order points that produce it).
type ecdhKE struct {
	method KEID
	priv   *ecdh.PrivateKey
	pub    []byte
	coord  int
}

func newECDHKE(m KEID, priv *ecdh.PrivateKey, coord int) *ecdhKE {
	pub := priv.PublicKey().Bytes()
	if m != CURVE25519 {
		pub = pub[1:] // SEC1 uncompressed: 0x04 | x | y
	}
	return &ecdhKE{method: m, priv: priv, pub: pub, coord: coord}
}

func (k *ecdhKE) Method() KEID   { return k.method }
func (k *ecdhKE) Public() []byte { return k.pub }

func (k *ecdhKE) SharedSecret(peer []byte) ([]byte, error) {
	want := k.coord
	if k.method != CURVE25519 {
		want = 2 * k.coord
	}
	if len(peer) != want {
		return nil, fmt.Errorf("%w: %d bytes of %v key exchange data, want %d", ErrKEPeer, len(peer), k.method, want)
	}
	raw := peer
	if k.method != CURVE25519 {
		raw = make([]byte, 1+len(peer))
		raw[0] = 4
		copy(raw[1:], peer)
	}
	// NewPublicKey checks that an ECP point is on the curve and is not the
	// point at infinity (which has no x | y encoding anyway).
	pk, err := k.priv.Curve().NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrKEPeer, k.method, err)
	}
	s, err := k.priv.ECDH(pk)
	if err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrKEPeer, k.method, err)
	}
	return s, nil
}

// Format never shows the private key.
func (k *ecdhKE) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "KeyExchange{%v}", k.method) }

// modp2048P is the 2048-bit MODP group's prime, RFC 3526 section 3; its
// generator is 2.
var modp2048P = []byte{
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
	0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
	0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
	0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
	0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
	0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x37, 0xED, 0x6B, 0x0B, 0xFF, 0x5C, 0xB6, 0xF4, 0x06, 0xB7, 0xED,
	0xEE, 0x38, 0x6B, 0xFB, 0x5A, 0x89, 0x9F, 0xA5, 0xAE, 0x9F, 0x24, 0x11, 0x7C, 0x4B, 0x1F, 0xE6,
	0x49, 0x28, 0x66, 0x51, 0xEC, 0xE4, 0x5B, 0x3D, 0xC2, 0x00, 0x7C, 0xB8, 0xA1, 0x63, 0xBF, 0x05,
	0x98, 0xDA, 0x48, 0x36, 0x1C, 0x55, 0xD3, 0x9A, 0x69, 0x16, 0x3F, 0xA8, 0xFD, 0x24, 0xCF, 0x5F,
	0x83, 0x65, 0x5D, 0x23, 0xDC, 0xA3, 0xAD, 0x96, 0x1C, 0x62, 0xF3, 0x56, 0x20, 0x85, 0x52, 0xBB,
	0x9E, 0xD5, 0x29, 0x07, 0x70, 0x96, 0x96, 0x6D, 0x67, 0x0C, 0x35, 0x4E, 0x4A, 0xBC, 0x98, 0x04,
	0xF1, 0x74, 0x6C, 0x08, 0xCA, 0x18, 0x21, 0x7C, 0x32, 0x90, 0x5E, 0x46, 0x2E, 0x36, 0xCE, 0x3B,
	0xE3, 0x9E, 0x77, 0x2C, 0x18, 0x0E, 0x86, 0x03, 0x9B, 0x27, 0x83, 0xA2, 0xEC, 0x07, 0xA2, 0x8F,
	0xB5, 0xC5, 0x5D, 0xF0, 0x6F, 0x4C, 0x52, 0xC9, 0xDE, 0x2B, 0xCB, 0xF6, 0x95, 0x58, 0x17, 0x18,
	0x39, 0x95, 0x49, 0x7C, 0xEA, 0x95, 0x6A, 0xE5, 0x15, 0xD2, 0x26, 0x18, 0x98, 0xFA, 0x05, 0x10,
	0x15, 0x72, 0x8E, 0x5A, 0x8A, 0xAC, 0xAA, 0x68, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
}

// modpExpLen is the length of a MODP_2048 private exponent: 320 bits, twice
// the upper strength estimate of the group in RFC 3526 section 8 and more
// than the 2 x 112 bits NIST SP 800-56A rev. 3 (section 5.6.1.1) asks for.
// With a safe-prime modulus the best known attack on a short exponent is a
// square-root search, 2^160 here, beyond the group's own strength; a
// full-length exponent would make every exponentiation six times slower.
const modpExpLen = 40

// modpM and modpG are the group's modulus and generator, built once; bigmod
// values are read-only once built and safe to share.
var modpM, modpG = func() (*bigmod.Modulus, *bigmod.Nat) {
	m, err := bigmod.NewModulus(modp2048P)
	if err != nil {
		panic(err)
	}
	g, err := bigmod.NewNat().SetBytes([]byte{2}, m)
	if err != nil {
		panic(err)
	}
	return m, g
}()

// modpKE is the 2048-bit MODP group of RFC 3526. Exponentiation uses
// filippo.io/bigmod (crypto/rsa's constant-time arithmetic, exported), whose
// running time depends on the lengths of its operands but not on their
// values: the private exponent never steers a branch or a memory access, as
// it would with math/big.
type modpKE struct {
	x   []byte // private exponent, big-endian
	pub []byte // g^x mod p, left-padded to the length of p
}

// newMODPKE makes a key from the exponent x, or from a random one if x is nil.
func newMODPKE(x []byte) *modpKE {
	if x == nil {
		x = make([]byte, modpExpLen)
		for allZero(x) { // a zero exponent has probability 2^-320
			rand.Read(x) // never fails since Go 1.24
		}
	}
	return &modpKE{x: x, pub: bigmod.NewNat().Exp(modpG, x, modpM).Bytes(modpM)}
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

func (k *modpKE) Method() KEID   { return MODP_2048 }
func (k *modpKE) Public() []byte { return k.pub }

// SharedSecret is y^x mod p, left-padded to the length of p as RFC 7296
// section 2.14 wants g^ir. The peer's value must be exactly as long as p
// (section 3.4) and 1 < y < p-1, as RFC 6989 asks: 0, 1 and p-1 would
// force the secret to 0, 1 or p-1. Every other value generates a subgroup
// of order q = (p-1)/2 or 2q, p being a safe prime, so no further check is
// needed.
func (k *modpKE) SharedSecret(peer []byte) ([]byte, error) {
	if len(peer) != len(modp2048P) {
		return nil, fmt.Errorf("%w: %d bytes of MODP_2048 key exchange data, want %d", ErrKEPeer, len(peer), len(modp2048P))
	}
	y, err := bigmod.NewNat().SetBytes(peer, modpM)
	if err != nil {
		return nil, fmt.Errorf("%w: MODP_2048 value not below p", ErrKEPeer)
	}
	if y.IsZero() == 1 || y.IsOne() == 1 || y.IsMinusOne(modpM) == 1 {
		return nil, fmt.Errorf("%w: MODP_2048 value is 0, 1 or p-1", ErrKEPeer)
	}
	return bigmod.NewNat().Exp(y, k.x, modpM).Bytes(modpM), nil
}

// Format never shows the private exponent.
func (k *modpKE) Format(f fmt.State, _ rune) { fmt.Fprint(f, "KeyExchange{MODP_2048}") }
