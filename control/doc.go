// Package control is the IKEv2 control plane of espx (RFC 7296): it
// negotiates IKE and child SAs with peers and installs child SAs in the data
// plane.
//
// The message codec: [Decode] and [Message.Encode]
// turn IKE messages into typed payloads ([SA], [KE], [ID], [Auth], [Nonce],
// [Notify], [Delete], [TS]) and back, strictly: every length is checked
// against its container, an unknown payload is kept as [Unknown] unless it
// is marked critical ([CriticalPayloadError]), and nothing a peer sends can
// make the decoder panic (it is fuzzed). An encrypted message keeps its SK
// payload for the IKE SA that owns it to verify and decrypt
// ([Message.SK], [DecodePayloads]); [Message.EncodeEncrypted] lays out
// the other direction through a [Sealer].
//
// A [Daemon] runs IKE SAs ([IKESA]) for configured peers ([PeerConfig]):
// IKE_SA_INIT (ike_init.go) negotiates the IKE SA from strongSwan-style
// proposals ([ParseProposals], [SelectProposal]), retrying with the
// responder's group after INVALID_KE_PAYLOAD, and detects NATs (natt.go):
// behind one, or when [PeerConfig.ForceEncap] pretends so as strongSwan's
// libipsec does, IKE floats to port 4500 behind the non-ESP marker and child
// SAs encapsulate ESP in UDP. IKE_AUTH (ike_auth.go) authenticates both ends
// with a pre-shared key, narrows the traffic selectors (section 2.9) and
// installs the first child SA through an [Installer], inbound before
// outbound. As responder, INFORMATIONAL (informational.go) answers liveness
// checks and deletes, and CREATE_CHILD_SA (child_create.go) creates and
// rekeys child SAs, with PFS when the proposal names a key exchange, and
// rekeys the IKE SA, which hands its child SAs to its successor. Our own
// exchanges queue behind one another (one request outstanding at a time):
// [Daemon.RekeyChild] (child_rekey.go) rekeys a child SA, with PFS when the
// proposal says so, and deletes the old one, settling a rekey both ends
// start at once as section 2.8.1 says; [Daemon.DeleteChild] and
// [IKESA.Delete] (delete.go) delete; [Daemon.CreateChild] adds a child SA
// to an established IKE SA; [Daemon.RekeyIKE] (ike_rekey.go) rekeys the IKE
// SA, moving its child SAs to the new one; [Daemon.CheckLiveness]
// (liveness.go) sends an empty INFORMATIONAL, and a peer that stops
// answering any request has its SAs closed after the retransmissions
// ([IKESA.Dead]). [Daemon.List] describes the IKE SAs for the operator.
// The initiator retransmits on the operator's schedule
// ([Retransmit], driven by a [Clock]); the responder answers retransmitted
// requests from a cache. IKE_SA_INIT requests pass the operator's
// denial-of-service limits first ([Limits], dos.go): cookies above a number
// of half-open SAs (section 2.6), a cap per peer address and overall, an
// initiator-only mode, and a timeout for half-open SAs. Each IKE SA is
// owned by one goroutine at a time
// (its mutex, held while a message or a timer is processed). A message that
// fails to decode or authenticate is counted in [Stats] and changes nothing.
// [UDPTransport] carries the messages on real sockets.
//
// It interoperates with strongSwan 5.9.8 (strongswan_test.go runs charon in
// a network namespace): espx as initiator and responder, AES-GCM and
// AES-CBC+HMAC child SAs whose keys match those charon derives, child SA
// rekeying started by strongSwan, with and without PFS, and IKE SA rekeying
// by either side followed by a child rekey over the new IKE SA; espx
// rekeying a child SA with PFS and deleting the IKE SA. cmd/espxd's tests
// run traffic through an espx gateway and a strongSwan one.
//
// Lifetimes, dead peer detection, reauthentication and idle close are
// policies of espxd (cmd/espxd/ike.go), which calls these. IKE SA rekeys
// both ends start at once are settled by nonce as section 2.8.2 says.
// Childless IKE SAs (RFC 6023) are made when [PeerConfig.Childless] asks
// and the responder agrees; as responder espx always agrees. The IKE SAs
// are found by SPI in a segmented table (manager.go), a lock per segment,
// so that many cores dispatch messages at once.
//
// Several configurations may name one peer (child_config.go): as
// responder the daemon picks the configuration of an IKE SA by the
// IKE_SA_INIT's proposals and then the initiator's identity, and that of
// each child SA by its selectors and ESP proposals, as strongSwan picks
// the children of a connection; [IKESA.CreateChildFor] negotiates another
// configuration's child SA in an IKE SA. [Daemon.Collector] exports the
// daemon's [Stats] and IKE SAs to Prometheus (prometheus.go);
// [Daemon.LogKeys] logs IKE SA keys for Wireshark while debugging
// (keylog.go), never otherwise.
package control
