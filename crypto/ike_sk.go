package crypto

import (
	"crypto/aes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// IKE message layout, RFC 7296 sections 3.1 and 3.2: the fixed IKE header
// ends with the 4-byte length of the whole message, and every payload starts
// with a generic header whose last two bytes are the payload's length.
const (
	// IKEHeaderLen is the length of the fixed IKE header.
	IKEHeaderLen = 28
	ikeLengthOff = 24
	// SKHeaderLen is the length of the Encrypted payload's generic header.
	SKHeaderLen      = 4
	payloadLengthOff = 2
	maxPayloadLen    = math.MaxUint16
)

// Errors of the SK payload. A message that fails to open is dropped; these
// say why.
var (
	// ErrSKLength: the message is too short for the transform, the
	// ciphertext is not a whole number of blocks, or the lengths in the IKE
	// header and the SK payload header do not frame the SK payload as the
	// last bytes of the message.
	ErrSKLength = errors.New("SK payload length does not fit the transform")
	// ErrSKPadLength: the decrypted pad length is longer than the
	// plaintext. Integrity was verified, so the peer built it that way.
	ErrSKPadLength = errors.New("SK payload pad length exceeds its plaintext")
	// ErrSKLayout: Seal was given a message whose SK payload header or
	// lengths are not what it needs to append the encrypted content.
	ErrSKLayout = errors.New("message is not laid out for the SK payload")
	// ErrSKIVExhausted: 2^64 - 1 messages were sealed under one key.
	ErrSKIVExhausted = errors.New("SK payload IVs exhausted: rekey the IKE SA")
)

// SK protects IKE messages in one direction with the Encrypted payload of RFC
// 7296 section 3.14: AES-CBC with an HMAC-SHA2 integrity transform, or
// AES-GCM-16 (RFC 5282) or ChaCha20-Poly1305 (RFC 7634). Build it with the
// keys of one direction, SK_ei and SK_ai or SK_er and SK_ar (IKEKeys.SKs does
// both). An SK is safe for concurrent use.
//
// The Encrypted payload must be the last payload of a message, so Seal and
// Open take the whole message and the offset of the SK payload's generic
// header; what they protect beyond the SK payload is the IKE header and any
// unencrypted payloads before it, which the transforms authenticate.
type SK struct {
	esp *ESP // the transform and its keys; SK uses its AEAD, salt and HMAC/CBC pool

	// ivBase and ivNext make the explicit IVs of the counter-mode
	// transforms: the n-th message sealed gets ivBase + n (mod 2^64). RFC
	// 5282 section 3.1 requires that an IV never repeat under one key (and
	// RFC 7634 for ChaCha20-Poly1305); the counter guarantees it within this
	// SK, atomically, however many goroutines seal. ivBase is random so that
	// two SKs built from the same keys by mistake (a derivation run twice,
	// an SA restored from storage) collide only with negligible probability:
	// a repeated nonce is catastrophic for GCM and ChaCha20-Poly1305, and
	// avoiding that is worth 8 random bytes. strongSwan's iv_gen_seq masks
	// its counter with a random 64-bit salt too.
	ivBase uint64
	ivNext atomic.Uint64 // messages sealed so far

	scratch sync.Pool // *Scratch: nonces and MAC output without allocating
}

// NewSK checks a transform configuration for the SK payload and builds it.
// c.EncrKey includes the 4-byte salt for AES-GCM and ChaCha20-Poly1305, as
// IKEKeys cuts SK_ei and SK_er. ENCR_NULL and AES-GMAC are ESP-only and
// refused.
func NewSK(c Config) (*SK, error) {
	switch c.Encr {
	case ENCR_AES_CBC, ENCR_AES_GCM_16, ENCR_CHACHA20_POLY1305:
	default:
		return nil, fmt.Errorf("SK payload %v/%v: %w: %v does not protect IKE messages", c.Encr, c.Integ, ErrCombination, c.Encr)
	}
	e, err := NewESP(c)
	if err != nil {
		return nil, fmt.Errorf("SK payload: %w", err)
	}
	var base [8]byte
	rand.Read(base[:]) // never fails since Go 1.24
	sk := &SK{esp: e, ivBase: binary.BigEndian.Uint64(base[:])}
	sk.scratch.New = func() any { return NewScratch() }
	return sk, nil
}

// String names the transform; it never shows keys.
func (sk *SK) String() string { return sk.esp.String() }

// padding is the number of padding bytes before the pad length byte for n
// bytes of plaintext. AES-CBC pads the plaintext and the pad length byte to
// a whole block (RFC 7296 section 3.14). The counter-mode transforms need no
// padding: RFC 7634 section 3 says to send none, and RFC 5282 leaves it to
// the sender.
func (sk *SK) padding(n int) int {
	if sk.esp.kind != kindCBC {
		return 0
	}
	return (aes.BlockSize - (n+1)%aes.BlockSize) % aes.BlockSize
}

// Overhead is what the SK payload adds after its generic header to n bytes
// of inner payloads: IV, padding, pad length byte and ICV. A message
// sealed with n bytes of plaintext is SK payload offset + SKHeaderLen +
// Overhead(n) + n long.
func (sk *SK) Overhead(n int) int {
	return sk.esp.ivLen + sk.padding(n) + 1 + sk.esp.icvLen
}

// Seal encrypts plaintext, the inner payloads, into the SK payload that
// starts at msg[skOff] and appends the result to msg, which it returns.
//
// msg must hold exactly the IKE header, any unencrypted payloads, and the
// SK payload's generic header at skOff, with every length already final:
// the IKE header's Length is len(msg) + Overhead(n) + n and the SK payload's
// Payload Length is SKHeaderLen + Overhead(n) + n, for n = len(plaintext).
// Those lengths are authenticated, so Seal checks them rather than trust
// the caller to have got them right; it fails with ErrSKLayout otherwise.
// plaintext may alias msg's spare capacity.
func (sk *SK) Seal(msg []byte, skOff int, plaintext []byte) ([]byte, error) {
	return sk.seal(msg, skOff, plaintext, nil)
}

// seal is Seal with an IV chosen by the caller when fixedIV is not nil:
// known-answer tests use it to reproduce published messages byte for byte.
func (sk *SK) seal(msg []byte, skOff int, plaintext, fixedIV []byte) ([]byte, error) {
	n := len(plaintext)
	hdrEnd := skOff + SKHeaderLen
	if skOff < IKEHeaderLen || len(msg) != hdrEnd {
		return msg, fmt.Errorf("%w: SK payload header at %d of a %d-byte message, want the last %d bytes after the %d-byte IKE header",
			ErrSKLayout, skOff, len(msg), SKHeaderLen, IKEHeaderLen)
	}
	payloadLen := SKHeaderLen + sk.Overhead(n) + n
	total := skOff + payloadLen
	if payloadLen > maxPayloadLen {
		return msg, fmt.Errorf("%w: %d bytes of plaintext make a %d-byte SK payload", ErrSKLayout, n, payloadLen)
	}
	if got := binary.BigEndian.Uint16(msg[skOff+payloadLengthOff:]); int(got) != payloadLen {
		return msg, fmt.Errorf("%w: SK Payload Length is %d, want %d", ErrSKLayout, got, payloadLen)
	}
	if got := binary.BigEndian.Uint32(msg[ikeLengthOff:]); int64(got) != int64(total) {
		return msg, fmt.Errorf("%w: IKE header Length is %d, want %d", ErrSKLayout, got, total)
	}
	ivLen, pad := sk.esp.ivLen, sk.padding(n)
	var ivNum uint64
	if sk.esp.kind == kindAEAD && fixedIV == nil {
		var ok bool
		if ivNum, ok = sk.nextIV(); !ok {
			return msg, ErrSKIVExhausted
		}
	}

	msg = slices.Grow(msg, total-len(msg))[:total]
	ptOff := hdrEnd + ivLen
	ptEnd := ptOff + n + pad + 1
	// The plaintext goes in first: it may sit in msg's spare capacity where
	// the IV goes, and copy moves overlapping bytes correctly.
	copy(msg[ptOff:], plaintext)
	clear(msg[ptOff+n : ptEnd-1]) // RFC 7296 lets the padding be anything
	msg[ptEnd-1] = byte(pad)
	iv := msg[hdrEnd:ptOff]
	s := sk.scratch.Get().(*Scratch)
	defer sk.scratch.Put(s)

	switch sk.esp.kind {
	case kindAEAD:
		if fixedIV != nil {
			copy(iv, fixedIV)
		} else {
			binary.BigEndian.PutUint64(iv, ivNum)
		}
		// RFC 5282 section 5.1: the AAD is the message from the first
		// byte of the IKE header through the SK payload's generic
		// header; the IV is not part of it (it is in the nonce).
		sk.esp.aead.Seal(msg[ptOff:ptOff], sk.esp.nonce(s, iv), msg[ptOff:ptEnd], msg[:hdrEnd])
	case kindCBC:
		if fixedIV != nil {
			copy(iv, fixedIV)
		} else {
			rand.Read(iv) // RFC 7296 section 3.14: random and unpredictable
		}
		m := sk.esp.macs.Get().(*macState)
		m.enc.(ivSetter).SetIV(iv)
		m.enc.CryptBlocks(msg[ptOff:ptEnd], msg[ptOff:ptEnd])
		// Section 3.14: the checksum covers the message from the IKE
		// header through the Pad Length, IV included.
		copy(msg[ptEnd:], sk.esp.mac(s, m, msg[:ptEnd], 0, false))
		sk.esp.macs.Put(m)
	}
	return msg, nil
}

// nextIV takes the next IV number. It stops at 2^64 - 1 messages rather
// than let the counter wrap onto the first IV.
func (sk *SK) nextIV() (uint64, bool) {
	for {
		n := sk.ivNext.Load()
		if n == math.MaxUint64 {
			return 0, false
		}
		if sk.ivNext.CompareAndSwap(n, n+1) {
			return sk.ivBase + n, true
		}
	}
}

// Open verifies and decrypts the SK payload that starts at msg[skOff] and
// returns the inner payloads, without padding and pad length. msg is the
// whole message: it must end where the SK payload ends, as the IKE header's
// Length and the SK payload's Payload Length both say, or Open fails with
// ErrSKLength before any cryptography. Integrity is checked before anything
// is decrypted (the HMAC in constant time, the AEADs by construction); on
// failure Open returns ErrAuth and no plaintext.
//
// Open decrypts in place: on success the returned plaintext is a view of
// msg's ciphertext, and after any attempt msg no longer holds the message
// as received. Keep a copy first if the message is needed again, as a
// responder needs the last request to recognise retransmissions.
func (sk *SK) Open(msg []byte, skOff int) ([]byte, error) {
	hdrEnd := skOff + SKHeaderLen
	if skOff < IKEHeaderLen || skOff > len(msg)-SKHeaderLen || len(msg)-skOff > maxPayloadLen {
		return nil, ErrSKLength
	}
	if int64(binary.BigEndian.Uint32(msg[ikeLengthOff:])) != int64(len(msg)) ||
		int(binary.BigEndian.Uint16(msg[skOff+payloadLengthOff:])) != len(msg)-skOff {
		return nil, ErrSKLength
	}
	ptOff := hdrEnd + sk.esp.ivLen
	ptEnd := len(msg) - sk.esp.icvLen
	ctLen := ptEnd - ptOff
	switch {
	case sk.esp.kind == kindAEAD && ctLen < 1, // at least the pad length byte
		sk.esp.kind == kindCBC && (ctLen < aes.BlockSize || ctLen%aes.BlockSize != 0):
		return nil, ErrSKLength
	}
	iv := msg[hdrEnd:ptOff]
	s := sk.scratch.Get().(*Scratch)
	defer sk.scratch.Put(s)

	var pt []byte
	switch sk.esp.kind {
	case kindAEAD:
		var err error
		pt, err = sk.esp.aead.Open(msg[ptOff:ptOff], sk.esp.nonce(s, iv), msg[ptOff:], msg[:hdrEnd])
		if err != nil {
			return nil, ErrAuth
		}
	case kindCBC:
		m := sk.esp.macs.Get().(*macState)
		sum := sk.esp.mac(s, m, msg[:ptEnd], 0, false)
		if subtle.ConstantTimeCompare(sum, msg[ptEnd:]) != 1 {
			sk.esp.macs.Put(m)
			return nil, ErrAuth
		}
		pt = msg[ptOff:ptEnd]
		m.dec.(ivSetter).SetIV(iv)
		m.dec.CryptBlocks(pt, pt)
		sk.esp.macs.Put(m)
	}
	// RFC 7296 section 3.14 and RFC 7634 section 3: a receiver accepts any
	// padding that fits.
	padLen := int(pt[len(pt)-1])
	if padLen+1 > len(pt) {
		return nil, ErrSKPadLength
	}
	return pt[:len(pt)-1-padLen], nil
}
