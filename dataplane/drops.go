package dataplane

// Drop names why a packet was not passed on. A drop is not an error: it is
// counted per worker under its reason, like the kernel's XfrmIn*/XfrmOut*
// counters and VPP's ESP error counters.
type Drop uint8

// Drop reasons. DropNone means the packet goes on.
const (
	DropNone Drop = iota
	// DropHdrError: an outer or inner header is truncated or inconsistent.
	DropHdrError
	// DropFragment: an outer IP fragment (reassembly is the kernel's job
	// and ESP over fragments is not supported), or an IPv6 fragment header
	// in a transport-mode packet to protect.
	DropFragment
	// DropNoState: no SA for the SPI, or a packet for another family or
	// encapsulation than the SA's.
	DropNoState
	// DropAuthFailed: the ICV did not verify.
	DropAuthFailed
	// DropReplay: a sequence number already received inside the window.
	DropReplay
	// DropTooOld: a sequence number left of the window, or zero.
	DropTooOld
	// DropPadError: the pad bytes are not 1, 2, 3, ... or the pad length
	// runs past the plaintext (RFC 4303 section 2.4).
	DropPadError
	// DropBadNextHeader: the next header does not match the SA's mode, or
	// the inner packet does not match it.
	DropBadNextHeader
	// DropDummy: a TFC dummy packet (next header 59), dropped on purpose.
	DropDummy
	// DropECN: outer CE on an inner packet that is not ECN-capable, which
	// RFC 6040 section 4.2 says to drop.
	DropECN
	// DropSeqOverflow: the SA has used all its sequence numbers and must
	// be rekeyed; it refuses to wrap (RFC 4303 section 3.3.3).
	DropSeqOverflow
	// DropNoRoom: not enough headroom or tailroom in the frame for the
	// ESP encapsulation.
	DropNoRoom
	// DropNotESP: UDP to port 4500 that is not ESP: an IKE message (zero
	// marker) or a NAT keepalive, which belong to the control plane.
	DropNotESP
	// DropNotIP: a frame that is neither IPv4 nor IPv6, or whose Ethernet
	// type disagrees with its IP version.
	DropNotIP
	// DropPolicyBlock: a discard policy matched (XfrmOutPolBlock,
	// XfrmInPolBlock).
	DropPolicyBlock
	// DropNoPolicy: a cleartext packet arrived on the unprotected side
	// where a protect policy says it should have come through an SA
	// (XfrmInNoStates for cleartext), or the default policy is discard.
	DropNoPolicy
	// DropTmplMismatch: a decrypted packet does not match a protect policy
	// of the SA it came through, so the peer sent traffic outside the
	// negotiated selectors (XfrmInTmplMismatch).
	DropTmplMismatch
	// DropAcquire: a packet hit a trap policy with no SA installed and was
	// not held: the hold queue was full, or acquires were rate-limited.
	DropAcquire
	// DropTTL: the TTL or hop limit ran out; an ICMP time exceeded went
	// back, rate permitting.
	DropTTL
	// DropTooBig: the packet would not fit the path MTU after
	// encapsulation and may not be fragmented; an ICMP fragmentation
	// needed or packet too big went back, rate permitting.
	DropTooBig
	// DropNoRoute: no route to the destination, or the route leaves by an
	// interface the worker does not serve.
	DropNoRoute
	// DropNoNeighbour: the next hop's link-layer address is not known yet;
	// the kernel was asked to resolve it.
	DropNoNeighbour
	// DropTxFull: the TX ring had no room.
	DropTxFull
	numDrops
)

var dropNames = [numDrops]string{
	DropNone:          "none",
	DropHdrError:      "hdr_error",
	DropFragment:      "fragment",
	DropNoState:       "no_state",
	DropAuthFailed:    "auth_failed",
	DropReplay:        "replay",
	DropTooOld:        "too_old",
	DropPadError:      "pad_error",
	DropBadNextHeader: "bad_next_header",
	DropDummy:         "dummy",
	DropECN:           "ecn",
	DropSeqOverflow:   "seq_overflow",
	DropNoRoom:        "no_room",
	DropNotESP:        "not_esp",
	DropNotIP:         "not_ip",
	DropPolicyBlock:   "policy_block",
	DropNoPolicy:      "no_policy",
	DropTmplMismatch:  "tmpl_mismatch",
	DropAcquire:       "acquire",
	DropTTL:           "ttl_expired",
	DropTooBig:        "too_big",
	DropNoRoute:       "no_route",
	DropNoNeighbour:   "no_neighbour",
	DropTxFull:        "tx_full",
}

// String is the reason's name as it appears in metrics labels.
func (d Drop) String() string {
	if d < numDrops {
		return dropNames[d]
	}
	return "unknown"
}

// Drops lists every reason except DropNone, for collectors.
func Drops() []Drop {
	ds := make([]Drop, 0, numDrops-1)
	for d := DropNone + 1; d < numDrops; d++ {
		ds = append(ds, d)
	}
	return ds
}
