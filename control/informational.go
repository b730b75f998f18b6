package control

import (
	"encoding/binary"
	"fmt"
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
				if spi == sa.childOutSPI && sa.childInSPI != 0 {
					ours = append(ours, sa.childInSPI)
					sa.deleteChild()
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
	if deleteIKE {
		sa.deleteChild()
		sa.d.remove(sa)
		sa.d.log.Info("IKE SA deleted by the peer", "peer", sa.cfg.Name, "spi_i", fmt.Sprintf("%016x", sa.spiI))
	}
}

// deleteChild removes the child SA from the data plane, inbound last so
// that packets in flight still find it.
func (sa *IKESA) deleteChild() {
	if sa.childOutSPI != 0 {
		sa.d.inst.DeleteSA(sa.childOutSPI, false)
	}
	if sa.childInSPI != 0 {
		sa.d.inst.DeleteSA(sa.childInSPI, true)
	}
	sa.childInSPI, sa.childOutSPI = 0, 0
}

// spiBytes is an ESP SPI as a proposal carries it.
func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }
