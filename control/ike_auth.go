package control

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/espx/espx/crypto"
)

// IKE_AUTH (RFC 7296 section 1.2): prove the identities with the
// pre-shared key and create the first child SA.

// keyPad is the constant of section 2.15 for shared-key authentication.
var keyPad = []byte("Key Pad for IKEv2")

// pskAuth is AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"),
// <SignedOctets>), where the signed octets are the sender's IKE_SA_INIT
// message, the other side's nonce and prf(SK_p, the sender's ID payload
// body) (section 2.15).
func (sa *IKESA) pskAuth(fromInitiator bool, id *ID) []byte {
	msg, nonce, skp := sa.msg1, sa.nr, sa.keys.SKpi
	if !fromInitiator {
		msg, nonce, skp = sa.msg2, sa.ni, sa.keys.SKpr
	}
	macedID := sa.prf.Sum(nil, skp, id.appendBody(nil))
	key := sa.prf.Sum(nil, sa.cfg.PSK, keyPad)
	defer clear(key)
	return sa.prf.Sum(nil, key, msg, nonce, macedID)
}

// sameID compares an identity received with the one configured.
func sameID(a, b *ID) bool {
	return a != nil && b != nil && a.IDType == b.IDType && bytes.Equal(a.Data, b.Data)
}

// startAuth sends the IKE_AUTH request: our identity and proof, and the
// proposal and traffic selectors of the first child SA.
func (sa *IKESA) startAuth() error {
	idi := &ID{IDType: sa.cfg.LocalID.IDType, Data: sa.cfg.LocalID.Data}
	inner := []Payload{
		idi,
		&ID{Responder: true, IDType: sa.cfg.RemoteID.IDType, Data: sa.cfg.RemoteID.Data},
		&Auth{Method: AuthPSK, Data: sa.pskAuth(true, idi)},
	}
	// RFC 6023: with both ends agreeing, IKE_AUTH makes the IKE SA alone.
	sa.childless = sa.cfg.Childless && sa.peerChildless
	if !sa.childless {
		spi, err := sa.d.inst.AllocSPI()
		if err != nil {
			return err
		}
		sa.pendingInSPI = spi
		props := make([]Proposal, len(sa.cfg.ESP))
		for i, p := range sa.cfg.ESP {
			p.SPI = spiBytes(spi)
			props[i] = p
		}
		inner = append(inner,
			&SA{Proposals: props},
			&TS{Selectors: sa.cfg.LocalTS},
			&TS{Responder: true, Selectors: sa.cfg.RemoteTS},
		)
	}
	b, err := (&Message{Header: sa.header(IKE_AUTH, false, sa.nextID)}).EncodeEncrypted(inner, sa.out)
	if err != nil {
		return err
	}
	sa.state = stateAuthSent
	sa.sendRequest(b, sa.nextID, IKE_AUTH, sa.processAuthResponse)
	sa.nextID++
	return nil
}

// processAuthRequest authenticates the initiator, negotiates the child SA,
// installs it and answers.
func (sa *IKESA) processAuthRequest(raw []byte, from, to netip.AddrPort) {
	ps, ok := sa.open(raw)
	if !ok {
		return
	}
	// Authentic: follow the peer to where it now sends from (section
	// 2.23), normally port 4500 behind its NAT.
	if sa.behindNAT() {
		sa.local, sa.remote = to, from
	}
	p, err := collect(ps)
	if err != nil || p.idi == nil || p.auth == nil {
		sa.d.Stats.Malformed.Add(1)
		return
	}
	// From here the request is authentic (its ICV verified): answer it,
	// even if only to refuse.
	id := sa.peerID
	sa.peerID++
	respond := func(inner []Payload) {
		b, err := (&Message{Header: sa.header(IKE_AUTH, true, id)}).EncodeEncrypted(inner, sa.out)
		if err != nil {
			sa.fail(err)
			return
		}
		sa.lastResp = b
		sa.send(b)
	}
	if !sameID(p.idi, sa.cfg.RemoteID) {
		// Another connection from the same address may be this
		// initiator's: the identity picks it, as in strongSwan.
		for _, c := range sa.d.peers {
			if sameID(p.idi, c.RemoteID) && c.Local.Addr() == sa.cfg.Local.Addr() && c.Remote.Addr() == sa.cfg.Remote.Addr() {
				sa.cfg = c
				break
			}
		}
	}
	if !sameID(p.idi, sa.cfg.RemoteID) || p.auth.Method != AuthPSK || !hmac.Equal(p.auth.Data, sa.pskAuth(true, p.idi)) {
		sa.d.Stats.AuthFailed.Add(1)
		respond([]Payload{&Notify{NotifyType: AUTHENTICATION_FAILED}})
		sa.fail(fmt.Errorf("%w: initiator %v", ErrAuthFailed, p.idi))
		return
	}
	idr := &ID{Responder: true, IDType: sa.cfg.LocalID.IDType, Data: sa.cfg.LocalID.Data}
	out := []Payload{idr, &Auth{Method: AuthPSK, Data: sa.pskAuth(false, idr)}}

	// The child SA: a failure here leaves the IKE SA up (section 1.2).
	childErr := func(n NotifyType) {
		respond(append(out, &Notify{Protocol: ProtoESP, NotifyType: n}))
		sa.established()
	}
	if p.sa == nil && p.tsi == nil && p.tsr == nil && sa.peerChildless {
		// A childless IKE SA (RFC 6023), which we announced we accept.
		sa.childless = true
		respond(out)
		sa.established()
		return
	}
	if p.sa == nil || p.tsi == nil || p.tsr == nil {
		childErr(NO_PROPOSAL_CHOSEN)
		return
	}
	// TSi are the initiator's side: our remote selectors.
	ch, refuse := chooseChild(sa.childConfigs(), p.sa.Proposals, p.tsi.Selectors, p.tsr.Selectors, true)
	if refuse != 0 {
		sa.countRefusal(refuse)
		childErr(refuse)
		return
	}
	chosen, tsi, tsr := ch.prop, ch.tsi, ch.tsr
	spi, err := sa.d.inst.AllocSPI()
	if err != nil {
		childErr(TEMPORARY_FAILURE)
		return
	}
	c := &child{cfg: ch.cfg, prop: chosen, inSPI: spi, outSPI: binary.BigEndian.Uint32(chosen.SPI), lts: tsr, rts: tsi}
	if err := sa.installChild(c, nil, sa.ni, sa.nr, false); err != nil {
		childErr(TEMPORARY_FAILURE)
		return
	}
	chosen.SPI = spiBytes(spi)
	respond(append(out,
		&SA{Proposals: []Proposal{chosen}},
		&TS{Selectors: tsi},
		&TS{Responder: true, Selectors: tsr},
	))
	sa.established()
}

// processAuthResponse authenticates the responder and installs the child
// SA it accepted.
func (sa *IKESA) processAuthResponse(raw []byte) {
	ps, ok := sa.open(raw)
	if !ok {
		return
	}
	sa.stopRequest()
	if n := findNotify(ps, AUTHENTICATION_FAILED); n != nil {
		sa.fail(fmt.Errorf("%w: the responder refused our authentication", ErrAuthFailed))
		return
	}
	p, err := collect(ps)
	if err != nil || p.idr == nil || p.auth == nil {
		sa.fail(fmt.Errorf("%w: IKE_AUTH response without IDr and AUTH", ErrProtocol))
		return
	}
	if !sameID(p.idr, sa.cfg.RemoteID) || p.auth.Method != AuthPSK || !hmac.Equal(p.auth.Data, sa.pskAuth(false, p.idr)) {
		sa.d.Stats.AuthFailed.Add(1)
		sa.fail(fmt.Errorf("%w: responder %v", ErrAuthFailed, p.idr))
		return
	}
	if n := firstErrorNotify(ps); n != nil {
		// The IKE SA stands; the child SA was refused.
		sa.established()
		sa.d.log.Warn("child SA refused", "peer", sa.cfg.Name, "notify", n.NotifyType)
		return
	}
	if sa.childless {
		if p.sa != nil || p.tsi != nil || p.tsr != nil {
			sa.fail(fmt.Errorf("%w: a child SA in the answer to a childless IKE_AUTH", ErrProtocol))
			return
		}
		sa.established()
		return
	}
	if p.sa == nil || len(p.sa.Proposals) != 1 || p.tsi == nil || p.tsr == nil {
		sa.fail(fmt.Errorf("%w: IKE_AUTH response without SA and traffic selectors", ErrProtocol))
		return
	}
	chosen := p.sa.Proposals[0]
	if !offered(withoutKE(sa.cfg.ESP), chosen) || len(chosen.SPI) != 4 {
		sa.fail(fmt.Errorf("%w: responder chose %v, which we did not offer", ErrProtocol, chosen))
		return
	}
	if !within(p.tsi.Selectors, sa.cfg.LocalTS) || !within(p.tsr.Selectors, sa.cfg.RemoteTS) {
		sa.fail(fmt.Errorf("%w: responder widened the traffic selectors", ErrProtocol))
		return
	}
	c := &child{cfg: sa.cfg, prop: chosen, inSPI: sa.pendingInSPI, outSPI: binary.BigEndian.Uint32(chosen.SPI), lts: p.tsi.Selectors, rts: p.tsr.Selectors}
	if err := sa.installChild(c, nil, sa.ni, sa.nr, true); err != nil {
		sa.fail(err)
		return
	}
	sa.established()
}

// installChild derives a child SA's keys, KEYMAT = prf+(SK_d, [g^ir |]
// Ni | Nr) with the nonces of the exchange that created it (section 2.17),
// and installs its inbound direction before its outbound one, so that no
// packet the peer sends once it has its keys finds us without ours.
// "Initiator" in section 2.17 is the initiator of that exchange, which for
// a CREATE_CHILD_SA need not be the IKE SA's original initiator:
// weInitiated says whether we sent its request (as strongSwan's child_create
// task does it).
func (sa *IKESA) installChild(c *child, gir, ni, nr []byte, weInitiated bool) error {
	t, esn, err := espTransform(c.prop)
	if err != nil {
		return err
	}
	keys, err := crypto.DeriveChildKeys(sa.prf, sa.keys.SKd, gir, ni, nr, t)
	if err != nil {
		return err
	}
	defer keys.Wipe()
	in, out := keys.InOut(weInitiated)
	base := ChildSA{Conn: c.cfg.Name, ESN: esn, Local: sa.local, Remote: sa.remote, Encap: sa.behindNAT(), LocalTS: c.lts, RemoteTS: c.rts}
	inSA, outSA := base, base
	inSA.Inbound, inSA.SPI, inSA.Transform, inSA.ReplayWindow = true, c.inSPI, in, c.cfg.replayWindow()
	outSA.SPI, outSA.Transform = c.outSPI, out
	inSA.Transform.EncrKey = append([]byte(nil), in.EncrKey...)
	inSA.Transform.IntegKey = append([]byte(nil), in.IntegKey...)
	outSA.Transform.EncrKey = append([]byte(nil), out.EncrKey...)
	outSA.Transform.IntegKey = append([]byte(nil), out.IntegKey...)
	if err := sa.d.inst.AddSA(&inSA); err != nil {
		return err
	}
	if err := sa.d.inst.AddSA(&outSA); err != nil {
		sa.d.inst.DeleteSA(inSA.SPI, true)
		return err
	}
	sa.children = append(sa.children, c)
	sa.d.Stats.ChildSAs.Add(1)
	sa.d.log.Info("child SA installed", "peer", sa.cfg.Name, "conn", c.cfg.Name, "esp", c.prop.String(),
		"spi_in", fmt.Sprintf("%08x", c.inSPI), "spi_out", fmt.Sprintf("%08x", c.outSPI))
	return nil
}

// withoutKE drops the key exchange transforms of child SA proposals: the
// first child SA takes its keys from IKE_SA_INIT's exchange, so in IKE_AUTH
// they mean nothing and responders leave them out (RFC 7296 section 1.2);
// they count again when the child SA is rekeyed.
func withoutKE(ps []Proposal) []Proposal {
	out := make([]Proposal, len(ps))
	for i, p := range ps {
		p.Transforms = slices.DeleteFunc(slices.Clone(p.Transforms), func(t Transform) bool { return t.Type == TransformKE })
		out[i] = p
	}
	return out
}

// countRefusal counts a child SA refused with n.
func (sa *IKESA) countRefusal(n NotifyType) {
	switch n {
	case NO_PROPOSAL_CHOSEN:
		sa.d.Stats.NoProposal.Add(1)
	case TS_UNACCEPTABLE:
		sa.d.Stats.TSUnacceptable.Add(1)
	}
}
