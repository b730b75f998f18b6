package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// ESP header layout, RFC 4303 section 2: SPI, sequence number, then the IV.
const (
	espSPIOff = 0
	espSeqOff = 4
	// HeaderLen is the length of the fixed ESP header (SPI and sequence number).
	HeaderLen = 8
	// TrailerLen is the pad length and next header bytes at the end of the plaintext.
	TrailerLen = 2

	saltLen   = 4 // RFC 4106 section 8.1, RFC 4543 section 8, RFC 7634 section 2
	aeadIVLen = 8 // explicit IV of the counter-mode transforms
	cbcIVLen  = aes.BlockSize
	aeadICV   = 16
	// espAlign is the alignment RFC 4303 section 2.4 requires of the ciphertext
	// (payload, padding, pad length and next header) whatever the cipher.
	espAlign = 4
)

// Config names a transform and carries its keys. The key slices are copied
// by NewESP; the caller may wipe its own copy afterwards.
type Config struct {
	Encr EncrID
	// EncrKeyBits is the negotiated key length attribute for AES (128, 192 or
	// 256) or 0 to take it from the key. ChaCha20-Poly1305 only has 256.
	EncrKeyBits int
	// EncrKey is the encryption key. For AES-GCM, AES-GMAC and
	// ChaCha20-Poly1305 it is followed by the 4-byte salt, exactly as the
	// KEYMAT of RFC 4106 section 8.1 is laid out.
	EncrKey  []byte
	Integ    IntegID
	IntegKey []byte
}

type kind uint8

const (
	kindAEAD kind = iota + 1 // AES-GCM, ChaCha20-Poly1305: AAD is SPI, [seq hi,] seq
	kindGMAC                 // AES-GMAC: nothing encrypted, everything is AAD
	kindCBC                  // AES-CBC with a separate HMAC over the whole packet
	kindNull                 // no encryption, HMAC only
)

// ESP is one ESP transform with its keys, ready to seal and open packets.
// It is immutable after NewESP and safe for concurrent use.
type ESP struct {
	kind    kind
	encr    EncrID
	integ   IntegID
	keyBits int
	ivLen   int
	icvLen  int
	align   int

	aead cipher.AEAD
	salt [saltLen]byte

	// macs holds per-goroutine HMAC and CBC state: hash.Hash and a CBC
	// BlockMode carry state between calls, so a worker takes one for the
	// length of a packet. sync.Pool keeps a cache per P, which is per worker
	// in practice, and costs nothing for AEAD transforms that never use it.
	macs sync.Pool
}

type macState struct {
	mac hash.Hash
	enc cipher.BlockMode
	dec cipher.BlockMode
}

type ivSetter interface{ SetIV([]byte) }

// Scratch is per-worker memory for building nonces and AAD and for MAC
// output. A worker owns one and passes it to every Seal and Open.
type Scratch struct {
	nonce [saltLen + aeadIVLen]byte
	aad   [12]byte
	sum   [sha512.Size]byte
	hi    [4]byte
	save  [4]byte
}

// NewScratch returns scratch memory for one worker.
func NewScratch() *Scratch { return new(Scratch) }

// NewESP checks a transform configuration and builds the transform.
func NewESP(c Config) (*ESP, error) {
	e := &ESP{encr: c.Encr, integ: c.Integ, align: espAlign}
	if err := e.init(c); err != nil {
		return nil, fmt.Errorf("ESP transform %v/%v: %w", c.Encr, c.Integ, err)
	}
	return e, nil
}

func (e *ESP) init(c Config) error {
	switch c.Encr {
	case ENCR_AES_GCM_16, ENCR_NULL_AUTH_AES_GMAC, ENCR_CHACHA20_POLY1305:
		if c.Integ != AUTH_NONE {
			return fmt.Errorf("%w: %v is combined-mode and takes no integrity transform, got %v", ErrCombination, c.Encr, c.Integ)
		}
		k, err := e.keyBitsFor(c, len(c.EncrKey)-saltLen)
		if err != nil {
			return err
		}
		key := c.EncrKey[:k/8]
		copy(e.salt[:], c.EncrKey[k/8:])
		e.ivLen, e.icvLen = aeadIVLen, aeadICV
		if c.Encr == ENCR_CHACHA20_POLY1305 {
			e.kind = kindAEAD
			e.aead, err = chacha20poly1305.New(key)
			return err
		}
		b, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		e.aead, err = cipher.NewGCM(b)
		if err != nil {
			return err
		}
		e.kind = kindAEAD
		if c.Encr == ENCR_NULL_AUTH_AES_GMAC {
			e.kind = kindGMAC
		}
		return nil
	case ENCR_AES_CBC, ENCR_NULL:
		newHash, icv, err := integFor(c.Integ, len(c.IntegKey))
		if err != nil {
			return err
		}
		e.icvLen = icv
		macKey := append([]byte(nil), c.IntegKey...)
		var block cipher.Block
		e.kind = kindNull
		if c.Encr == ENCR_AES_CBC {
			k, err := e.keyBitsFor(c, len(c.EncrKey))
			if err != nil {
				return err
			}
			if block, err = aes.NewCipher(c.EncrKey[:k/8]); err != nil {
				return err
			}
			e.kind, e.ivLen, e.align = kindCBC, cbcIVLen, aes.BlockSize
			if _, ok := cipher.NewCBCEncrypter(block, make([]byte, cbcIVLen)).(ivSetter); !ok {
				return fmt.Errorf("%w: this Go's CBC mode cannot reset its IV", ErrCombination)
			}
		} else if len(c.EncrKey) != 0 || c.EncrKeyBits != 0 {
			return fmt.Errorf("%w: ENCR_NULL takes no key", ErrKeyLength)
		}
		e.macs.New = func() any {
			m := &macState{mac: hmac.New(newHash, macKey)}
			if block != nil {
				m.enc = cipher.NewCBCEncrypter(block, make([]byte, cbcIVLen))
				m.dec = cipher.NewCBCDecrypter(block, make([]byte, cbcIVLen))
			}
			return m
		}
		return nil
	}
	return fmt.Errorf("%w: encryption transform %v", ErrUnknownTransform, c.Encr)
}

// keyBitsFor checks the encryption key length (without salt) against the
// transform and the negotiated key length attribute.
func (e *ESP) keyBitsFor(c Config, n int) (int, error) {
	bits := n * 8
	ok := bits == 128 || bits == 192 || bits == 256
	if c.Encr == ENCR_CHACHA20_POLY1305 {
		ok = bits == 256
	}
	if !ok || n < 0 {
		extra := ""
		if c.Encr != ENCR_AES_CBC {
			extra = " plus a 4-byte salt"
		}
		return 0, fmt.Errorf("%w: %d-byte key for %v, want 16, 24 or 32 bytes (32 for ChaCha20)%s", ErrKeyLength, len(c.EncrKey), c.Encr, extra)
	}
	if c.EncrKeyBits != 0 && c.EncrKeyBits != bits {
		return 0, fmt.Errorf("%w: key length attribute says %d bits, key has %d", ErrKeyLength, c.EncrKeyBits, bits)
	}
	e.keyBits = bits
	return bits, nil
}

func integFor(id IntegID, keyLen int) (func() hash.Hash, int, error) {
	var (
		h       func() hash.Hash
		key, tr int
	)
	switch id {
	case AUTH_HMAC_SHA2_256_128:
		h, key, tr = sha256.New, 32, 16
	case AUTH_HMAC_SHA2_384_192:
		h, key, tr = sha512.New384, 48, 24
	case AUTH_HMAC_SHA2_512_256:
		h, key, tr = sha512.New, 64, 32
	case AUTH_NONE:
		return nil, 0, fmt.Errorf("%w: AES-CBC and NULL encryption need an integrity transform", ErrCombination)
	default:
		return nil, 0, fmt.Errorf("%w: integrity transform %v", ErrUnknownTransform, id)
	}
	if keyLen != key {
		return nil, 0, fmt.Errorf("%w: %d-byte key for %v, want %d (RFC 4868)", ErrKeyLength, keyLen, id, key)
	}
	return h, tr, nil
}

// IVLen is the length of the IV that follows the ESP header.
func (e *ESP) IVLen() int { return e.ivLen }

// ICVLen is the length of the integrity check value at the end of the packet.
func (e *ESP) ICVLen() int { return e.icvLen }

// Align is the multiple that the plaintext (payload, padding, pad length and
// next header) must be padded to: what a receiver must accept.
func (e *ESP) Align() int { return e.align }

// PadTo is the multiple a sender should pad the plaintext to. It is a
// multiple of Align. For the AES and ChaCha20 transforms it is the 16-byte
// block, which costs at most 12 bytes on the wire and saves much more in
// the cipher: Go's AES-GCM seals 1408 bytes about a quarter faster than 1400,
// because a partial last block leaves its bulk code path.
func (e *ESP) PadTo() int {
	if e.kind == kindNull {
		return e.align
	}
	return aes.BlockSize
}

// Overhead is the ESP header, IV and ICV around the padded plaintext.
func (e *ESP) Overhead() int { return HeaderLen + e.ivLen + e.icvLen }

// String names the transform the way strongSwan proposals do; it never
// shows keys.
func (e *ESP) String() string {
	switch e.kind {
	case kindAEAD, kindGMAC:
		return fmt.Sprintf("%v-%d", e.encr, e.keyBits)
	case kindCBC:
		return fmt.Sprintf("%v-%d/%v", e.encr, e.keyBits, e.integ)
	}
	return fmt.Sprintf("%v/%v", e.encr, e.integ)
}

// Seal protects the ESP packet that starts at buf[off]: the 8-byte header
// (SPI and low 32 sequence bits, filled by the caller), room for the IV, the
// plaintext with its padding and trailer, and room for the ICV, up to the
// end of buf. seq is the full 64-bit sequence number: its high half is
// authenticated when esn is set, and the counter-mode transforms use all of
// it as their IV, which therefore never repeats under one key.
//
// AES-GMAC with ESN borrows the 4 bytes before the ESP header while it runs
// and puts them back, so it needs off >= 4.
func (e *ESP) Seal(s *Scratch, buf []byte, off int, seq uint64, esn bool) error {
	return e.seal(s, buf, off, seq, esn, nil)
}

// seal is Seal with an IV chosen by the caller when iv is not nil: known-answer
// tests use it to reproduce published vectors byte for byte.
func (e *ESP) seal(s *Scratch, buf []byte, off int, seq uint64, esn bool, fixedIV []byte) error {
	pkt := buf[off:]
	ptOff, ptEnd, ok := e.layout(len(pkt))
	if !ok {
		return ErrLength
	}
	iv := pkt[HeaderLen:ptOff]
	pt := pkt[ptOff:ptEnd]
	switch e.kind {
	case kindAEAD:
		e.setIV(iv, seq, fixedIV)
		e.aead.Seal(pt[:0], e.nonce(s, iv), pt, e.aeadAAD(s, pkt, uint32(seq>>32), esn))
	case kindGMAC:
		e.setIV(iv, seq, fixedIV)
		aad, ok := e.gmacAAD(s, buf, off, ptEnd, uint32(seq>>32), esn)
		if !ok {
			return ErrRoom
		}
		e.aead.Seal(pkt[ptEnd:ptEnd], e.nonce(s, iv), nil, aad)
		e.gmacRestore(s, buf, off, esn)
	case kindCBC, kindNull:
		m := e.macs.Get().(*macState)
		if e.kind == kindCBC {
			if fixedIV != nil {
				copy(iv, fixedIV)
			} else {
				rand.Read(iv) // never fails since Go 1.24
			}
			m.enc.(ivSetter).SetIV(iv)
			m.enc.CryptBlocks(pt, pt)
		}
		copy(pkt[ptEnd:], e.mac(s, m, pkt[:ptEnd], uint32(seq>>32), esn))
		e.macs.Put(m)
	}
	return nil
}

// Open verifies and decrypts in place the ESP packet that starts at buf[off]
// and runs to the end of buf, and returns its plaintext (payload, padding,
// pad length, next header). seqHi is the high half of the sequence number
// the receiver inferred; it is used only when esn is set. On failure no
// plaintext is released: the HMAC transforms verify before decrypting and the
// AEADs wipe what they decrypted.
func (e *ESP) Open(s *Scratch, buf []byte, off int, seqHi uint32, esn bool) ([]byte, error) {
	pkt := buf[off:]
	ptOff, ptEnd, ok := e.layout(len(pkt))
	if !ok {
		return nil, ErrLength
	}
	iv := pkt[HeaderLen:ptOff]
	switch e.kind {
	case kindAEAD:
		ct := pkt[ptOff:]
		if _, err := e.aead.Open(ct[:0], e.nonce(s, iv), ct, e.aeadAAD(s, pkt, seqHi, esn)); err != nil {
			return nil, ErrAuth
		}
	case kindGMAC:
		aad, ok := e.gmacAAD(s, buf, off, ptEnd, seqHi, esn)
		if !ok {
			return nil, ErrRoom
		}
		_, err := e.aead.Open(s.sum[:0], e.nonce(s, iv), pkt[ptEnd:], aad)
		e.gmacRestore(s, buf, off, esn)
		if err != nil {
			return nil, ErrAuth
		}
	case kindCBC, kindNull:
		m := e.macs.Get().(*macState)
		sum := e.mac(s, m, pkt[:ptEnd], seqHi, esn)
		if subtle.ConstantTimeCompare(sum, pkt[ptEnd:]) != 1 {
			e.macs.Put(m)
			return nil, ErrAuth
		}
		if e.kind == kindCBC {
			m.dec.(ivSetter).SetIV(iv)
			m.dec.CryptBlocks(pkt[ptOff:ptEnd], pkt[ptOff:ptEnd])
		}
		e.macs.Put(m)
	}
	return pkt[ptOff:ptEnd], nil
}

// layout finds the plaintext in an ESP packet of n bytes and checks that the
// lengths work for this transform.
func (e *ESP) layout(n int) (ptOff, ptEnd int, ok bool) {
	ptOff = HeaderLen + e.ivLen
	ptEnd = n - e.icvLen
	pt := ptEnd - ptOff
	return ptOff, ptEnd, pt >= TrailerLen && pt%e.align == 0
}

// setIV writes the explicit IV of a counter-mode transform: the 64-bit
// sequence number, unique for the life of the key (RFC 4106 section 3.1).
func (e *ESP) setIV(iv []byte, seq uint64, fixed []byte) {
	if fixed != nil {
		copy(iv, fixed)
		return
	}
	binary.BigEndian.PutUint64(iv, seq)
}

func (e *ESP) nonce(s *Scratch, iv []byte) []byte {
	copy(s.nonce[:saltLen], e.salt[:])
	copy(s.nonce[saltLen:], iv)
	return s.nonce[:]
}

// aeadAAD is RFC 4106 section 5: SPI and 32-bit sequence number, or with ESN
// SPI, high and low halves of the 64-bit sequence number (RFC 7634 section 2.1
// reuses it).
func (e *ESP) aeadAAD(s *Scratch, pkt []byte, hi uint32, esn bool) []byte {
	if !esn {
		return pkt[:HeaderLen]
	}
	copy(s.aad[0:4], pkt[espSPIOff:espSPIOff+4])
	binary.BigEndian.PutUint32(s.aad[4:8], hi)
	copy(s.aad[8:12], pkt[espSeqOff:espSeqOff+4])
	return s.aad[:]
}

// gmacAAD is RFC 4543 section 3.3: the AAD is the whole packet up to the ICV,
// with the high sequence bits between SPI and low sequence bits under ESN.
// Go's AEAD wants contiguous AAD, so with ESN the SPI is moved 4 bytes left
// into the headroom and the high bits take its place until gmacRestore.
func (e *ESP) gmacAAD(s *Scratch, buf []byte, off, ptEnd int, hi uint32, esn bool) ([]byte, bool) {
	if !esn {
		return buf[off : off+ptEnd], true
	}
	if off < 4 {
		return nil, false
	}
	copy(s.save[:], buf[off-4:off])
	copy(buf[off-4:off], buf[off:off+4])
	binary.BigEndian.PutUint32(buf[off:off+4], hi)
	return buf[off-4 : off+ptEnd], true
}

func (e *ESP) gmacRestore(s *Scratch, buf []byte, off int, esn bool) {
	if esn {
		copy(buf[off:off+4], buf[off-4:off])
		copy(buf[off-4:off], s.save[:])
	}
}

// mac is the ICV of the HMAC transforms: RFC 4303 section 2.8 authenticates
// the packet up to the ICV and, under ESN, the high sequence bits appended
// after it (section 2.2.1), which are never sent.
func (e *ESP) mac(s *Scratch, m *macState, authed []byte, hi uint32, esn bool) []byte {
	m.mac.Reset()
	m.mac.Write(authed)
	if esn {
		binary.BigEndian.PutUint32(s.hi[:], hi)
		m.mac.Write(s.hi[:])
	}
	return m.mac.Sum(s.sum[:0])[:e.icvLen]
}

// Format prints a Config without its keys, whatever the verb, so that an SA
// configuration can be logged: only the transforms and key lengths show.
func (c Config) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "{%v %d-bit key [redacted]", c.Encr, 8*len(c.EncrKey))
	if c.Integ != AUTH_NONE || len(c.IntegKey) > 0 {
		fmt.Fprintf(f, " %v %d-bit key [redacted]", c.Integ, 8*len(c.IntegKey))
	}
	fmt.Fprint(f, "}")
}

// MarshalJSON keeps keys out of JSON logs as Format keeps them out of text.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(fmt.Sprint(c))
}

// Equal reports whether c and o are the same transform with the same keys,
// comparing the keys in constant time.
func (c Config) Equal(o Config) bool {
	return c.Encr == o.Encr && c.EncrKeyBits == o.EncrKeyBits && c.Integ == o.Integ &&
		subtle.ConstantTimeCompare(c.EncrKey, o.EncrKey) == 1 &&
		subtle.ConstantTimeCompare(c.IntegKey, o.IntegKey) == 1
}
