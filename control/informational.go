package control

import "encoding/binary"

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
	deleteIKE, closed := false, false
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
				}
			}
			if len(ours) > 0 {
				answer = append(answer, &Delete{Protocol: ProtoESP, SPIs: ours})
				// The peer deleted the last child SA: it closed the tunnel,
				// rather than finishing a rekey (which leaves the new one).
				closed = closed || len(sa.children) == 0
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
	if deleteIKE {
		// An IKE SA the peer rekeyed has handed its children on already;
		// one that still has them is a tunnel the peer closes.
		closed = closed || len(sa.children) > 0
		sa.closeIKE()
	}
	if closed && sa.d.onPeerClose != nil {
		sa.d.onPeerClose(sa.cfg.Name)
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
