package control

import (
	"encoding/binary"
	"slices"
)

// INFORMATIONAL (RFC 7296 section 1.4): as responder, answer liveness
// checks and delete what the peer deletes. Sending our own deletes and
// liveness checks comes with the SA lifecycle.

// processInformational handles an authenticated INFORMATIONAL request.
func (sa *IKESA) processInformational(raw []byte) {
	ps, ok := sa.open(raw)
	if !ok {
		return
	}
	id := sa.peerID
	sa.peerID++
	var answer []Payload
	deleteIKE := false
	// closed are the connections whose tunnels the peer closes.
	var closed, deleted []*PeerConfig
	for _, p := range ps {
		del, ok := p.(*Delete)
		if !ok {
			continue
		}
		switch del.Protocol {
		case ProtoIKE:
			deleteIKE = true
		case ProtoESP:
			// Section 1.4.1: answer with the SPIs of our half of each
			// pair the peer deletes.
			var ours []uint32
			for _, spi := range del.SPIs {
				if c := sa.childByOutSPI(spi); c != nil {
					ours = append(ours, c.inSPI)
					sa.deleteChild(c)
					deleted = append(deleted, c.cfg)
				}
			}
			if len(ours) > 0 {
				answer = append(answer, &Delete{Protocol: ProtoESP, SPIs: ours})
			}
		}
	}
	b, err := (&Message{Header: sa.header(INFORMATIONAL, true, id)}).EncodeEncrypted(answer, sa.out)
	if err != nil {
		sa.fail(err)
		return
	}
	sa.lastResp = b
	sa.send(b)
	// A connection none of whose child SAs is left is closed, rather
	// than rekeyed (a rekey leaves the new child SA).
	for _, cfg := range deleted {
		if !slices.Contains(closed, cfg) && !slices.ContainsFunc(sa.children, func(c *child) bool { return c.cfg == cfg }) {
			closed = append(closed, cfg)
		}
	}
	if deleteIKE {
		// An IKE SA the peer rekeyed has handed its children on already;
		// one that still has them closes their tunnels.
		for _, c := range sa.children {
			if !slices.Contains(closed, c.cfg) {
				closed = append(closed, c.cfg)
			}
		}
		sa.closeIKE()
	}
	if sa.d.onPeerClose != nil {
		for _, cfg := range closed {
			sa.d.onPeerClose(cfg.Name)
		}
	}
}

// OnPeerClose sets a function the daemon calls, with the connection's
// name, when the peer deletes a tunnel: its last child SA, or the IKE SA
// with its child SAs. It runs with the IKE SA locked and must not call the
// daemon back before returning (start a goroutine for that): it is how
// espxd applies a connection's close-action.
func (d *Daemon) OnPeerClose(f func(name string)) { d.onPeerClose = f }

// childByOutSPI finds a child SA by the SPI the peer receives on.
func (sa *IKESA) childByOutSPI(spi uint32) *child {
	for _, c := range sa.children {
		if c.outSPI == spi {
			return c
		}
	}
	return nil
}

// deleteChild removes a child SA from the data plane, inbound last so that
// packets in flight still find it, and forgets it.
func (sa *IKESA) deleteChild(c *child) {
	sa.d.inst.DeleteSA(c.outSPI, false)
	sa.d.inst.DeleteSA(c.inSPI, true)
	for i, x := range sa.children {
		if x == c {
			sa.children = append(sa.children[:i], sa.children[i+1:]...)
			break
		}
	}
}

// spiBytes is an ESP SPI as a proposal carries it.
func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }
