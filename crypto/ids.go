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
