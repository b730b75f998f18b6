package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
)

// ErrPRFPlusLength is returned when more keying material is asked of prf+
// than RFC 7296 section 2.13 defines: 255 blocks of the PRF's output.
var ErrPRFPlusLength = errors.New("prf+ output longer than 255 PRF blocks")

// prfPlusMaxBlocks is the last value the one-octet counter of prf+ takes.
const prfPlusMaxBlocks = 255

// PRF is an IKEv2 pseudorandom function (RFC 7296 section 2.13). The HMAC-SHA2
// PRFs of RFC 4868 take keys of any length (HMAC hashes a key longer than the
// hash block and zero-pads a shorter one), so Ni | Nr is the key of SKEYSEED
// whatever the nonce lengths, and none of the fixed-key-length rules of
// section 2.14 apply. The zero PRF is not usable; get one
// from NewPRF. A PRF is a small value, safe to copy and to use concurrently.
type PRF struct {
	id   PRFID
	hash func() hash.Hash
	size int
}

// NewPRF returns the PRF that id names.
func NewPRF(id PRFID) (PRF, error) {
	switch id {
	case PRF_HMAC_SHA2_256:
		return PRF{id, sha256.New, sha256.Size}, nil
	case PRF_HMAC_SHA2_384:
		return PRF{id, sha512.New384, sha512.Size384}, nil
	case PRF_HMAC_SHA2_512:
		return PRF{id, sha512.New, sha512.Size}, nil
	}
	return PRF{}, fmt.Errorf("%w: PRF %v", ErrUnknownTransform, id)
}

// ID is the transform ID the PRF was made from.
func (p PRF) ID() PRFID { return p.id }

// Size is the length of the PRF's output, which for an HMAC PRF is also its
// preferred key size (RFC 7296 section 2.13): the length of SK_d, SK_pi and
// SK_pr.
func (p PRF) Size() int { return p.size }

// MinNonceLen is the shortest Ni or Nr that RFC 7296 section 2.10 allows with
// this PRF: 128 bits, and at least half the PRF's key length.
func (p PRF) MinNonceLen() int { return max(16, p.size/2) }

func (p PRF) String() string { return p.id.String() }

// Sum appends prf(key, data[0] | data[1] | ...) to dst and returns the
// result. Passing the parts of S separately saves the caller from
// concatenating them.
func (p PRF) Sum(dst, key []byte, data ...[]byte) []byte {
	m := hmac.New(p.hash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(dst)
}

// Plus returns n bytes of prf+(key, seed[0] | seed[1] | ...), RFC 7296
// section 2.13:
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	...
//
// It fails with ErrPRFPlusLength beyond 255 blocks.
func (p PRF) Plus(key []byte, n int, seed ...[]byte) ([]byte, error) {
	blocks := (n + p.size - 1) / p.size
	if n < 0 || blocks > prfPlusMaxBlocks {
		return nil, fmt.Errorf("%w: %d bytes of %v", ErrPRFPlusLength, n, p)
	}
	// out has room for every whole block up front, so that prev, a view of
	// the last block, stays valid while the next one is appended.
	out := make([]byte, 0, blocks*p.size)
	m := hmac.New(p.hash, key)
	var prev []byte
	for i := 1; i <= blocks; i++ {
		m.Reset()
		m.Write(prev)
		for _, s := range seed {
			m.Write(s)
		}
		m.Write([]byte{byte(i)})
		out = m.Sum(out)
		prev = out[len(out)-p.size:]
	}
	// The tail of the last block is keying material nobody asked for.
	clear(out[n:])
	return out[:n], nil
}
