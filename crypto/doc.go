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
//
// # IKEv2
//
// The package also holds the cryptography of IKEv2 (RFC 7296), for the IKE
// daemon to build its exchanges on; it knows IKE messages only as far as the
// IKE header's Length and the Encrypted payload's generic header.
//
//   - [PRF] (ike_prf.go): the HMAC-SHA2 PRFs of RFC 4868 and prf+ (section
//     2.13).
//   - Key derivation (ike_keys.go): [DeriveSKEYSEED], [DeriveIKEKeys] for
//     the seven secrets of an IKE SA (section 2.14), [DeriveRekeySKEYSEED]
//     for IKE SA rekeying (section 2.18), and [DeriveChildKeys], whose
//     [ChildKeys] hands the data plane a [Config] per direction (section
//     2.17).
//   - [KeyExchange] (ike_dh.go): MODP_2048 (RFC 3526), ECP_256 and ECP_384
//     (RFC 5903) and Curve25519 (RFC 8031), each checking the peer's public
//     value. MODP exponentiation is constant-time (filippo.io/bigmod); the
//     curves are crypto/ecdh's.
//   - [SK] (ike_sk.go): the Encrypted payload with AES-CBC and an HMAC
//     (section 3.14), AES-GCM-16 (RFC 5282) or ChaCha20-Poly1305 (RFC 7634).
//     It reuses the ESP transforms' key checks and cipher state, seals into
//     a message whose header the caller has laid out using [SK.Overhead],
//     and opens in place, checking integrity before it decrypts.
//
// [IKEKeys], [ChildKeys], [SK] and the key exchanges hold keys and print
// (fmt, encoding/json, log/slog) without them, and so does a [Config].
package crypto
