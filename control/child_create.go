package control

import (
	"encoding/binary"
	"fmt"

	"github.com/espx/espx/crypto"
)

// CREATE_CHILD_SA (RFC 7296 section 1.3), as responder: a new child SA, or
// the rekeying of one (section 1.3.3; the old SA stays until the peer
// deletes it). Rekeying the IKE SA itself (section 1.3.2) and starting
// these exchanges ourselves come later.

// processCreateChild answers an authenticated CREATE_CHILD_SA request.
func (sa *IKESA) processCreateChild(raw []byte) {
	ps, ok := sa.open(raw)
	if !ok {
		return
	}
	id := sa.peerID
	sa.peerID++
	respond := func(inner []Payload) {
		b, err := (&Message{Header: sa.header(CREATE_CHILD_SA, true, id)}).EncodeEncrypted(inner, sa.out)
		if err != nil {
			sa.fail(err)
			return
		}
		sa.lastResp = b
		sa.send(b)
	}
	refuse := func(n NotifyType, data []byte) {
		respond([]Payload{&Notify{NotifyType: n, Data: data}})
	}
	p, err := collect(ps)
	if err != nil || p.sa == nil || p.nonce == nil {
		refuse(INVALID_SYNTAX, nil)
		return
	}
	if len(p.sa.Proposals) > 0 && p.sa.Proposals[0].Protocol == ProtoIKE {
		// IKE SA rekeying is not implemented yet: refusing leaves the
		// peer to retry later or to reauthenticate.
		sa.d.Stats.NoProposal.Add(1)
		refuse(NO_PROPOSAL_CHOSEN, nil)
		return
	}
	if p.tsi == nil || p.tsr == nil {
		refuse(INVALID_SYNTAX, nil)
		return
	}
	if rk := findNotify(ps, REKEY_SA); rk != nil {
		if len(rk.SPI) != 4 || sa.childBySPI(binary.BigEndian.Uint32(rk.SPI)) == nil {
			refuse(CHILD_SA_NOT_FOUND, nil)
			return
		}
	}
	chosen, ok := SelectProposal(sa.cfg.ESP, p.sa.Proposals)
	if !ok || len(chosen.SPI) != 4 {
		sa.d.Stats.NoProposal.Add(1)
		refuse(NO_PROPOSAL_CHOSEN, nil)
		return
	}
	// With PFS the chosen proposal names a key exchange method, and the
	// request must carry a KE payload of that method.
	var keID crypto.KEID
	for _, t := range chosen.Transforms {
		if t.Type == TransformKE {
			keID = crypto.KEID(t.ID)
		}
	}
	var ker *KE
	var gir []byte
	if keID != 0 {
		if p.ke == nil || crypto.KEID(p.ke.Group) != keID {
			sa.d.Stats.InvalidKE.Add(1)
			refuse(INVALID_KE_PAYLOAD, binary.BigEndian.AppendUint16(nil, uint16(keID)))
			return
		}
		ke, err := crypto.NewKeyExchange(keID)
		if err != nil {
			refuse(NO_PROPOSAL_CHOSEN, nil)
			return
		}
		if gir, err = ke.SharedSecret(p.ke.Data); err != nil {
			refuse(INVALID_SYNTAX, nil)
			return
		}
		ker = &KE{Group: uint16(keID), Data: ke.Public()}
	}
	if len(p.nonce.Data) < sa.prf.MinNonceLen() {
		refuse(INVALID_SYNTAX, nil)
		return
	}
	tsi, tsr := narrow(p.tsi.Selectors, sa.cfg.RemoteTS), narrow(p.tsr.Selectors, sa.cfg.LocalTS)
	if len(tsi) == 0 || len(tsr) == 0 {
		sa.d.Stats.TSUnacceptable.Add(1)
		refuse(TS_UNACCEPTABLE, nil)
		return
	}
	spi, err := sa.d.inst.AllocSPI()
	if err != nil {
		refuse(TEMPORARY_FAILURE, nil)
		return
	}
	nr := newNonce()
	c := &child{prop: chosen, inSPI: spi, outSPI: binary.BigEndian.Uint32(chosen.SPI), lts: tsr, rts: tsi}
	err = sa.installChild(c, gir, p.nonce.Data, nr)
	clear(gir)
	if err != nil {
		refuse(TEMPORARY_FAILURE, nil)
		return
	}
	chosen.SPI = spiBytes(spi)
	out := []Payload{&SA{Proposals: []Proposal{chosen}}, &Nonce{Data: nr}}
	if ker != nil {
		out = append(out, ker)
	}
	respond(append(out, &TS{Selectors: tsi}, &TS{Responder: true, Selectors: tsr}))
	sa.d.log.Info("CREATE_CHILD_SA answered", "peer", sa.cfg.Name, "spi_in", fmt.Sprintf("%08x", spi))
}

// childBySPI finds a child SA by either of its SPIs.
func (sa *IKESA) childBySPI(spi uint32) *child {
	for _, c := range sa.children {
		if c.inSPI == spi || c.outSPI == spi {
			return c
		}
	}
	return nil
}
