// Package crypto holds the ESP transforms of espx, named by their IANA IKEv2
// transform IDs: AES-GCM-16 (RFC 4106), AES-CBC with HMAC-SHA2 (RFC 3602,
// RFC 4868), ChaCha20-Poly1305 (RFC 7634), AES-GMAC (RFC 4543) and NULL
// encryption with an HMAC (RFC 2410, for tests and debugging).
//
// The package knows how each transform protects an ESP packet (what is
// encrypted, what is authenticated, where the high-order sequence number bits
// go when extended sequence numbers are in use) but nothing of IP headers,
// tunnels or SAs: dataplane builds the ESP header and trailer and calls
// [ESP.Seal] and [ESP.Open] on it.
//
// Every check that can be made when a transform is built is made there, by
// [NewESP]: unknown IDs, wrong key lengths and combinations that make no
// sense (an AEAD with a separate integrity transform, CBC without one) are
// errors then, never at packet time.
//
// An [ESP] is immutable once built and safe for concurrent use by many
// workers. Per-packet scratch memory (nonces, assembled AAD, MAC output) lives
// in a [Scratch] that each worker owns, so that sealing and opening allocate
// nothing.
package crypto
