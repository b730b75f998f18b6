// Package control is the IKEv2 control plane of espx (RFC 7296): it
// negotiates IKE and child SAs with peers and installs child SAs in the data
// plane.
//
// What is here so far is the message codec: [Decode] and [Message.Encode]
// turn IKE messages into typed payloads ([SA], [KE], [ID], [Auth], [Nonce],
// [Notify], [Delete], [TS]) and back, strictly: every length is checked
// against its container, an unknown payload is kept as [Unknown] unless it
// is marked critical ([CriticalPayloadError]), and nothing a peer sends can
// make the decoder panic (it is fuzzed). An encrypted message keeps its SK
// payload for the IKE SA that owns it to verify and decrypt
// ([Message.SK], [DecodePayloads]); [Message.EncodeEncrypted] lays out
// the other direction through a [Sealer].
//
// The exchanges (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL)
// come next, one file each, as tasks with build and process steps; each IKE
// SA is owned by one goroutine at a time.
package control
