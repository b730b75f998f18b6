package crypto

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// IKESuite names the transforms negotiated for an IKE SA that its keys
// depend on.
type IKESuite struct {
	Encr EncrID
	// EncrKeyBits is the Key Length attribute for AES (128, 192 or 256);
	// 0 for ChaCha20-Poly1305, which has only 256.
	EncrKeyBits int
	// Integ is AUTH_NONE with the combined-mode (AEAD) transforms.
	Integ IntegID
	PRF   PRFID
}

// String names the suite's transforms, as ESP.String does; an IKESuite holds
// no keys.
func (s IKESuite) String() string {
	b := s.Encr.String()
	if s.EncrKeyBits != 0 {
		b += fmt.Sprintf("-%d", s.EncrKeyBits)
	}
	if s.Integ != AUTH_NONE {
		b += "/" + s.Integ.String()
	}
	return b + "/" + s.PRF.String()
}

// IKEKeys are the seven secrets of an IKE SA, RFC 7296 section 2.14, cut from
// prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) in this order. With a combined-mode
// transform SK_ai and SK_ar are empty and SK_ei and SK_er end with the 4-byte
// salt (RFC 5282; RFC 7634 section 3).
//
// fmt, encoding/json and log/slog show the suite and the key lengths, never
// the keys. That protection ends where fmt cannot call methods: an IKEKeys
// stored in an unexported field of a struct that is printed whole is printed
// raw, so hold one by pointer.
type IKEKeys struct {
	Suite IKESuite
	// SKd derives the keys of Child SAs and of the next IKE SA.
	SKd []byte
	// SKai and SKar key the integrity transform of messages from the
	// initiator and from the responder.
	SKai, SKar []byte
	// SKei and SKer key the encryption transform the same way.
	SKei, SKer []byte
	// SKpi and SKpr are the PRF keys of the initiator's and responder's
	// AUTH payloads (RFC 7296 section 2.15).
	SKpi, SKpr []byte
}

// DeriveSKEYSEED is SKEYSEED = prf(Ni | Nr, g^ir), RFC 7296 section 2.14,
// for the IKE SA that IKE_SA_INIT creates.
func DeriveSKEYSEED(prf PRF, ni, nr, gir []byte) []byte {
	key := make([]byte, 0, len(ni)+len(nr))
	return prf.Sum(nil, append(append(key, ni...), nr...), gir)
}

// DeriveRekeySKEYSEED is SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr),
// RFC 7296 section 2.18, for an IKE SA created by rekeying another. prf and
// skd are the old IKE SA's: "it is the old IKE SA's PRF that is used to
// generate SKEYSEED". The new SA's own PRF then runs DeriveIKEKeys with the
// new SPIs. With additional key exchanges (RFC 9370) gir is the
// concatenation of every shared secret in order.
func DeriveRekeySKEYSEED(prf PRF, skd, gir, ni, nr []byte) []byte {
	return prf.Sum(nil, skd, gir, ni, nr)
}

// DeriveIKEKeys cuts the seven secrets of an IKE SA from
// prf+(SKEYSEED, Ni | Nr | SPIi | SPIr), RFC 7296 section 2.14, at the
// lengths the suite sets. The SPIs are the IKE SA's 8-byte SPIs as numbers
// (big-endian on the wire).
func DeriveIKEKeys(s IKESuite, skeyseed, ni, nr []byte, spii, spir uint64) (*IKEKeys, error) {
	prf, encLen, integLen, err := s.check()
	if err != nil {
		return nil, err
	}
	var spis [16]byte
	binary.BigEndian.PutUint64(spis[0:8], spii)
	binary.BigEndian.PutUint64(spis[8:16], spir)
	n := 3*prf.Size() + 2*integLen + 2*encLen
	km, err := prf.Plus(skeyseed, n, ni, nr, spis[:])
	if err != nil {
		return nil, fmt.Errorf("IKE SA keys %v: %w", s, err)
	}
	c := cutter{km}
	return &IKEKeys{
		Suite: s,
		SKd:   c.next(prf.Size()),
		SKai:  c.next(integLen),
		SKar:  c.next(integLen),
		SKei:  c.next(encLen),
		SKer:  c.next(encLen),
		SKpi:  c.next(prf.Size()),
		SKpr:  c.next(prf.Size()),
	}, nil
}

// check validates the suite for an IKE SA and returns its PRF and the lengths
// of its encryption (with salt) and integrity keys.
func (s IKESuite) check() (prf PRF, encLen, integLen int, err error) {
	switch s.Encr {
	case ENCR_AES_CBC, ENCR_AES_GCM_16, ENCR_CHACHA20_POLY1305:
	default:
		// ENCR_NULL and AES-GMAC would leave IKE messages in the clear,
		// and neither has a definition for the SK payload: IANA's
		// registry lists both for ESP only.
		return PRF{}, 0, 0, fmt.Errorf("IKE SA suite %v: %w: %v does not protect IKE messages", s, ErrCombination, s.Encr)
	}
	if prf, err = NewPRF(s.PRF); err != nil {
		return PRF{}, 0, 0, fmt.Errorf("IKE SA suite %v: %w", s, err)
	}
	if encLen, integLen, err = keymatLens(s.Encr, s.EncrKeyBits, s.Integ); err != nil {
		return PRF{}, 0, 0, fmt.Errorf("IKE SA suite %v: %w", s, err)
	}
	return prf, encLen, integLen, nil
}

// SKs builds the SK payload protection of both directions: out seals the
// messages this end sends, in opens those it receives. The initiator (of the
// IKE SA, RFC 7296 section 2.14) sends with SK_ei and SK_ai.
func (k *IKEKeys) SKs(initiator bool) (out, in *SK, err error) {
	i2r := Config{Encr: k.Suite.Encr, EncrKeyBits: k.Suite.EncrKeyBits, EncrKey: k.SKei, Integ: k.Suite.Integ, IntegKey: k.SKai}
	r2i := Config{Encr: k.Suite.Encr, EncrKeyBits: k.Suite.EncrKeyBits, EncrKey: k.SKer, Integ: k.Suite.Integ, IntegKey: k.SKar}
	if !initiator {
		i2r, r2i = r2i, i2r
	}
	if out, err = NewSK(i2r); err != nil {
		return nil, nil, err
	}
	if in, err = NewSK(r2i); err != nil {
		return nil, nil, err
	}
	return out, in, nil
}

// Wipe zeroes the keys once they are no longer needed. It limits exposure
// rather than ending it: an SK built from them keeps an AES key schedule and
// HMAC pads of its own, and copies the caller made are out of its reach.
func (k *IKEKeys) Wipe() {
	for _, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
		clear(b)
	}
}

// Format prints the suite and key lengths whatever the verb, so that no
// verb, %x and %#v included, can print a key.
func (k IKEKeys) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "IKEKeys{%v SK_d:%d SK_a:%d SK_e:%d SK_p:%d bytes, redacted}",
		k.Suite, len(k.SKd), len(k.SKai), len(k.SKei), len(k.SKpi))
}

// MarshalJSON keeps the keys out of encoding/json, and so out of log/slog's
// JSON handler, which marshals what it logs.
func (k IKEKeys) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprint(k)) }

// ChildKeys is the keying material of one Child SA pair, RFC 7296 section
// 2.17, as two ESP configurations: I2R carries traffic from the initiator of
// the exchange that created the Child SA (IKE_AUTH or CREATE_CHILD_SA, who
// may be the IKE SA's responder) to its responder, R2I the other way.
//
// Like IKEKeys it prints without keys, under encoding/json too, where a
// Config on its own would show them.
type ChildKeys struct {
	I2R, R2I Config
}

// DeriveChildKeys computes KEYMAT = prf+(SK_d, Ni | Nr), or with PFS
// prf+(SK_d, g^ir (new) | Ni | Nr), RFC 7296 section 2.17, and splits it for
// the transforms t names (t's key fields must be empty): the initiator to
// responder SA's encryption key then integrity key, then the same for the
// responder to initiator SA. The encryption keys of AES-GCM, AES-GMAC and
// ChaCha20-Poly1305 include their 4-byte salt (RFC 4106 section 8.1, RFC
// 4543 section 8, RFC 7634 section 2). gir is nil without PFS; with
// additional key exchanges (RFC 9370) it is every shared secret in order.
// prf and skd are the IKE SA's; ni and nr are the nonces of the exchange.
func DeriveChildKeys(prf PRF, skd, gir, ni, nr []byte, t Config) (*ChildKeys, error) {
	if len(t.EncrKey) != 0 || len(t.IntegKey) != 0 {
		return nil, fmt.Errorf("child SA keys %v/%v: %w: the template carries keys", t.Encr, t.Integ, ErrKeyLength)
	}
	encLen, integLen, err := keymatLens(t.Encr, t.EncrKeyBits, t.Integ)
	if err != nil {
		return nil, fmt.Errorf("child SA keys %v/%v: %w", t.Encr, t.Integ, err)
	}
	km, err := prf.Plus(skd, 2*(encLen+integLen), gir, ni, nr)
	if err != nil {
		return nil, fmt.Errorf("child SA keys %v/%v: %w", t.Encr, t.Integ, err)
	}
	c := cutter{km}
	k := &ChildKeys{I2R: t, R2I: t}
	k.I2R.EncrKey, k.I2R.IntegKey = c.next(encLen), c.next(integLen)
	k.R2I.EncrKey, k.R2I.IntegKey = c.next(encLen), c.next(integLen)
	return k, nil
}

// InOut returns the configuration of the inbound and of the outbound SA for
// the end that initiated the exchange (initiator true) or responded to it.
func (k *ChildKeys) InOut(initiator bool) (in, out Config) {
	if initiator {
		return k.R2I, k.I2R
	}
	return k.I2R, k.R2I
}

// Wipe zeroes the keys; see IKEKeys.Wipe for its limits.
func (k *ChildKeys) Wipe() {
	for _, b := range [][]byte{k.I2R.EncrKey, k.I2R.IntegKey, k.R2I.EncrKey, k.R2I.IntegKey} {
		clear(b)
	}
}

// Format prints the transforms and key lengths whatever the verb.
func (k ChildKeys) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "ChildKeys{%v-%d/%v encr:%d integ:%d bytes, redacted}",
		k.I2R.Encr, k.I2R.EncrKeyBits, k.I2R.Integ, len(k.I2R.EncrKey), len(k.I2R.IntegKey))
}

// MarshalJSON keeps the keys out of encoding/json.
func (k ChildKeys) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprint(k)) }

// keymatLens is how many bytes of keying material a transform pair takes: the
// encryption key, with the salt of the counter-mode transforms, and the
// integrity key. It makes the checks NewESP makes, so that a derivation
// fails before it produces keys no transform accepts.
func keymatLens(encr EncrID, bits int, integ IntegID) (encLen, integLen int, err error) {
	aead := false
	switch encr {
	case ENCR_AES_CBC, ENCR_AES_GCM_16, ENCR_NULL_AUTH_AES_GMAC:
		if bits != 128 && bits != 192 && bits != 256 {
			return 0, 0, fmt.Errorf("%w: %v needs a key length attribute of 128, 192 or 256, got %d", ErrKeyLength, encr, bits)
		}
		encLen = bits / 8
		if encr != ENCR_AES_CBC {
			encLen += saltLen
			aead = true
		}
	case ENCR_CHACHA20_POLY1305:
		if bits != 0 && bits != 256 {
			return 0, 0, fmt.Errorf("%w: %v is 256 bits only, got %d", ErrKeyLength, encr, bits)
		}
		encLen, aead = 32+saltLen, true
	case ENCR_NULL:
		if bits != 0 {
			return 0, 0, fmt.Errorf("%w: %v takes no key, got a %d-bit key length", ErrKeyLength, encr, bits)
		}
	default:
		return 0, 0, fmt.Errorf("%w: encryption transform %v", ErrUnknownTransform, encr)
	}
	switch integ {
	case AUTH_NONE:
		if !aead {
			return 0, 0, fmt.Errorf("%w: %v needs an integrity transform", ErrCombination, encr)
		}
		return encLen, 0, nil
	case AUTH_HMAC_SHA2_256_128:
		integLen = 32
	case AUTH_HMAC_SHA2_384_192:
		integLen = 48
	case AUTH_HMAC_SHA2_512_256:
		integLen = 64
	default:
		return 0, 0, fmt.Errorf("%w: integrity transform %v", ErrUnknownTransform, integ)
	}
	if aead {
		return 0, 0, fmt.Errorf("%w: %v is combined-mode and takes no integrity transform, got %v", ErrCombination, encr, integ)
	}
	return encLen, integLen, nil
}

// cutter hands out consecutive pieces of keying material. Each piece has its
// capacity cut to its length, so that appending to one key cannot overwrite
// the next.
type cutter struct{ b []byte }

func (c *cutter) next(n int) []byte {
	p := c.b[:n:n]
	c.b = c.b[n:]
	return p
}
