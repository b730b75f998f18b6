package control

import (
	"encoding/binary"
	"fmt"

	"github.com/espx/espx/crypto"
)

// CREATE_CHILD_SA (RFC 7296 section 1.3), as responder: a new child SA, the
// rekeying of one (section 1.3.3; the old SA stays until the peer deletes
// it), or the rekeying of the IKE SA itself (sections 1.3.2 and 2.18).
// Starting these exchanges ourselves comes later.

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
		sa.rekeyIKE(p, respond, refuse)
		return
	}
	if p.tsi == nil || p.tsr == nil {
		refuse(INVALID_SYNTAX, nil)
		return
	}
	var rekeyOf *child
	if rk := findNotify(ps, REKEY_SA); rk != nil {
		if len(rk.SPI) != 4 {
			refuse(CHILD_SA_NOT_FOUND, nil)
			return
		}
		if rekeyOf = sa.childBySPI(binary.BigEndian.Uint32(rk.SPI)); rekeyOf == nil {
			refuse(CHILD_SA_NOT_FOUND, nil)
			return
		}
	}
	// A rekey keeps its child SA's configuration; a new child SA gets the
	// configuration for this peer that fits its selectors.
	cfgs := sa.childConfigs()
	if rekeyOf != nil {
		cfgs = []*PeerConfig{rekeyOf.cfg}
	}
	ch, n := chooseChild(cfgs, p.sa.Proposals, p.tsi.Selectors, p.tsr.Selectors, false)
	if n != 0 {
		sa.countRefusal(n)
		refuse(n, nil)
		return
	}
	chosen, tsi, tsr := ch.prop, ch.tsi, ch.tsr
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
	spi, err := sa.d.inst.AllocSPI()
	if err != nil {
		refuse(TEMPORARY_FAILURE, nil)
		return
	}
	nr := newNonce()
	c := &child{cfg: ch.cfg, prop: chosen, inSPI: spi, outSPI: binary.BigEndian.Uint32(chosen.SPI), lts: tsr, rts: tsi}
	err = sa.installChild(c, gir, p.nonce.Data, nr, false)
	clear(gir)
	if err != nil {
		refuse(TEMPORARY_FAILURE, nil)
		return
	}
	if rekeyOf != nil && rekeyOf.rekeying {
		// Both ends rekey the same child SA: settled when our own
		// rekey's answer comes (section 2.8.1).
		rekeyOf.collision = &rekeyed{c: c, ni: p.nonce.Data, nr: nr}
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

// rekeyIKE answers a request to rekey this IKE SA: a new IKE SA with new
// SPIs and keys from SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), which
// takes over the child SAs. The peer, which started the rekey, is the
// original initiator of the new SA (section 2.18); it deletes the old one.
func (sa *IKESA) rekeyIKE(p payloadsOf, respond func([]Payload), refuse func(NotifyType, []byte)) {
	chosen, ok := SelectProposal(sa.cfg.IKE, p.sa.Proposals)
	if !ok || len(chosen.SPI) != 8 {
		sa.d.Stats.NoProposal.Add(1)
		refuse(NO_PROPOSAL_CHOSEN, nil)
		return
	}
	suite, keID, err := ikeSuite(chosen)
	if err != nil {
		refuse(NO_PROPOSAL_CHOSEN, nil)
		return
	}
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
	gir, err := ke.SharedSecret(p.ke.Data)
	if err != nil {
		refuse(INVALID_SYNTAX, nil)
		return
	}
	prf, err := crypto.NewPRF(suite.PRF)
	if err != nil || len(p.nonce.Data) < prf.MinNonceLen() {
		refuse(INVALID_SYNTAX, nil)
		return
	}
	n, err := sa.successor(false, binary.BigEndian.Uint64(chosen.SPI), newSPI(), prf, suite, keID, p.nonce.Data, newNonce(), gir)
	if err != nil {
		refuse(NO_PROPOSAL_CHOSEN, nil)
		return
	}
	chosen.SPI = binary.BigEndian.AppendUint64(nil, n.spiR)
	// Answer on the old SA before the new one exists for the peer.
	respond([]Payload{&SA{Proposals: []Proposal{chosen}}, &Nonce{Data: n.nr}, &KE{Group: uint16(keID), Data: ke.Public()}})
	n.children, sa.children = sa.children, nil
	n.state = stateEstablished
	close(n.done)
	n.armKeepalive()
	sa.d.Stats.IKERekeys.Add(1)
	if sa.ikeRekeying {
		// We are rekeying it too: which new SA survives is settled when
		// our answer comes (ike_rekey.go).
		sa.peerRekeyed = n
	}
	sa.d.sas.put(n.spiR, n)
	sa.d.log.Info("IKE SA rekeyed by the peer", "peer", sa.cfg.Name, "ike", suite.String(),
		"old_spi_i", fmt.Sprintf("%016x", sa.spiI), "new_spi_i", fmt.Sprintf("%016x", n.spiI))
}
