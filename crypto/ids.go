package crypto

import (
	"errors"
	"fmt"
)

// EncrID is an IKEv2 encryption transform ID (IANA "Transform Type 1").
type EncrID uint16

// Encryption transform IDs (IANA IKEv2 parameters, Transform Type 1).
const (
	ENCR_NULL               EncrID = 11
	ENCR_AES_CBC            EncrID = 12
	ENCR_AES_GCM_16         EncrID = 20
	ENCR_NULL_AUTH_AES_GMAC EncrID = 21
	ENCR_CHACHA20_POLY1305  EncrID = 28
)

// IntegID is an IKEv2 integrity transform ID (IANA "Transform Type 3").
type IntegID uint16

// Integrity transform IDs (IANA IKEv2 parameters, Transform Type 3).
const (
	AUTH_NONE              IntegID = 0
	AUTH_HMAC_SHA2_256_128 IntegID = 12
	AUTH_HMAC_SHA2_384_192 IntegID = 13
	AUTH_HMAC_SHA2_512_256 IntegID = 14
)

// PRFID is an IKEv2 pseudorandom function transform ID (IANA "Transform
// Type 2").
type PRFID uint16

// Pseudorandom function transform IDs (IANA IKEv2 parameters, Transform
// Type 2; RFC 4868 section 4).
const (
	PRF_HMAC_SHA2_256 PRFID = 5
	PRF_HMAC_SHA2_384 PRFID = 6
	PRF_HMAC_SHA2_512 PRFID = 7
)

// KEID is an IKEv2 Key Exchange Method ID (IANA "Transform Type 4", named
// "Diffie-Hellman Group" before RFC 9370).
type KEID uint16

// Key Exchange Method IDs (IANA IKEv2 parameters, Transform Type 4).
const (
	MODP_2048  KEID = 14 // RFC 3526 section 3
	ECP_256    KEID = 19 // RFC 5903
	ECP_384    KEID = 20 // RFC 5903
	CURVE25519 KEID = 31 // RFC 8031
)

func (id EncrID) String() string {
	switch id {
	case ENCR_NULL:
		return "ENCR_NULL"
	case ENCR_AES_CBC:
		return "ENCR_AES_CBC"
	case ENCR_AES_GCM_16:
		return "ENCR_AES_GCM_16"
	case ENCR_NULL_AUTH_AES_GMAC:
		return "ENCR_NULL_AUTH_AES_GMAC"
	case ENCR_CHACHA20_POLY1305:
		return "ENCR_CHACHA20_POLY1305"
	}
	return fmt.Sprintf("ENCR(%d)", uint16(id))
}

func (id IntegID) String() string {
	switch id {
	case AUTH_NONE:
		return "AUTH_NONE"
	case AUTH_HMAC_SHA2_256_128:
		return "AUTH_HMAC_SHA2_256_128"
	case AUTH_HMAC_SHA2_384_192:
		return "AUTH_HMAC_SHA2_384_192"
	case AUTH_HMAC_SHA2_512_256:
		return "AUTH_HMAC_SHA2_512_256"
	}
	return fmt.Sprintf("AUTH(%d)", uint16(id))
}

func (id PRFID) String() string {
	switch id {
	case PRF_HMAC_SHA2_256:
		return "PRF_HMAC_SHA2_256"
	case PRF_HMAC_SHA2_384:
		return "PRF_HMAC_SHA2_384"
	case PRF_HMAC_SHA2_512:
		return "PRF_HMAC_SHA2_512"
	}
	return fmt.Sprintf("PRF(%d)", uint16(id))
}

func (id KEID) String() string {
	switch id {
	case MODP_2048:
		return "MODP_2048"
	case ECP_256:
		return "ECP_256"
	case ECP_384:
		return "ECP_384"
	case CURVE25519:
		return "CURVE25519"
	}
	return fmt.Sprintf("KE(%d)", uint16(id))
}

// Errors returned by NewESP, wrapped with the details of the transform.
var (
	ErrUnknownTransform = errors.New("unknown transform")
	ErrKeyLength        = errors.New("wrong key length")
	ErrCombination      = errors.New("impossible transform combination")
)

// Errors returned at packet time. They are preallocated so that the hot path
// does not allocate when it fails.
var (
	ErrAuth   = errors.New("ICV verification failed")
	ErrLength = errors.New("ESP packet length does not fit the transform")
	ErrRoom   = errors.New("no room before the ESP header for ESN AAD")
)
