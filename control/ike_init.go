package control

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/espx/espx/crypto"
)

// IKE_SA_INIT (RFC 7296 section 1.2): negotiate the IKE SA's algorithms,
// exchange nonces and key exchange values, derive the keys.

// maxCookieTries bounds how often an initiator returns a fresh cookie.
const maxCookieTries = 3

// startInit sends the IKE_SA_INIT request with our first key exchange
// method, or the one a previous INVALID_KE_PAYLOAD asked for.
func (sa *IKESA) startInit() error {
	if sa.keID == 0 {
		for _, t := range sa.cfg.IKE[0].Transforms {
			if t.Type == TransformKE {
				sa.keID = crypto.KEID(t.ID)
				break
			}
		}
	}
	ke, err := crypto.NewKeyExchange(sa.keID)
	if err != nil {
		return err
	}
	// A retry after COOKIE or INVALID_KE_PAYLOAD keeps the nonce: the
	// responder's cookie covers it (section 2.6).
	if sa.ni == nil {
		sa.ni = newNonce()
	}
	sa.ke, sa.state = ke, stateInitSent
	var ps []Payload
	if sa.cookie != nil {
		ps = append(ps, &Notify{NotifyType: COOKIE, Data: sa.cookie})
	}
	ps = append(ps,
		&SA{Proposals: sa.cfg.IKE},
		&KE{Group: uint16(sa.keID), Data: ke.Public()},
		&Nonce{Data: sa.ni},
		&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: sa.natSourceHash(0)},
		&Notify{NotifyType: NAT_DETECTION_DESTINATION_IP, Data: natDetection(sa.spiI, 0, sa.remote)},
	)
	if sa.cfg.Childless {
		ps = append(ps, &Notify{NotifyType: CHILDLESS_IKEV2_SUPPORTED})
	}
	m := &Message{Header: sa.header(IKE_SA_INIT, false, 0), Payloads: ps}
	sa.msg1 = m.Encode()
	sa.nextID = 1
	sa.sendRequest(sa.msg1, 0, IKE_SA_INIT, sa.processInitResponse)
	return nil
}

// respondInit answers an IKE_SA_INIT request from a configured peer.
func (d *Daemon) respondInit(cfg *PeerConfig, m *Message, raw []byte, from, to netip.AddrPort) {
	p, err := collect(m.Payloads)
	if err != nil || p.sa == nil || p.ke == nil || p.nonce == nil {
		d.Stats.Malformed.Add(1)
		return
	}
	reply := func(n *Notify) {
		// An error answer creates no state (section 2.6's spirit).
		h := Header{SPIi: m.SPIi, Exchange: IKE_SA_INIT, Flags: FlagResponse}
		d.conn.Send((&Message{Header: h, Payloads: []Payload{n}}).Encode(), to, from)
	}
	chosen, ok := SelectProposal(cfg.IKE, p.sa.Proposals)
	if !ok {
		d.Stats.NoProposal.Add(1)
		reply(&Notify{NotifyType: NO_PROPOSAL_CHOSEN})
		return
	}
	suite, keID, err := ikeSuite(chosen)
	if err != nil {
		d.Stats.NoProposal.Add(1)
		reply(&Notify{NotifyType: NO_PROPOSAL_CHOSEN})
		return
	}
	if crypto.KEID(p.ke.Group) != keID {
		// Section 1.2: tell the initiator which group we want.
		d.Stats.InvalidKE.Add(1)
		var g [2]byte
		binary.BigEndian.PutUint16(g[:], uint16(keID))
		reply(&Notify{NotifyType: INVALID_KE_PAYLOAD, Data: g[:]})
		return
	}
	ke, err := crypto.NewKeyExchange(keID)
	if err != nil {
		return
	}
	gir, err := ke.SharedSecret(p.ke.Data)
	if err != nil {
		d.Stats.Malformed.Add(1)
		return
	}
	prf, err := crypto.NewPRF(suite.PRF)
	if err != nil {
		return
	}
	if len(p.nonce.Data) < prf.MinNonceLen() {
		d.Stats.Malformed.Add(1)
		return
	}
	sa := d.newSA(cfg, false, m.SPIi, newSPI())
	sa.mu.Lock()
	defer sa.mu.Unlock()
	d.mu.Lock()
	sa.remote = from
	d.byInit[halfOpenKey{m.SPIi, from.Addr()}] = sa
	d.setHalfOpen(sa, true)
	timeout := d.limits.HalfOpenTimeout
	d.mu.Unlock()
	d.clock.AfterFunc(timeout, func() {
		sa.mu.Lock()
		defer sa.mu.Unlock()
		if sa.state == stateInitDone {
			d.Stats.HalfOpenExpired.Add(1)
			sa.fail(fmt.Errorf("%w: IKE_AUTH never came", ErrTimeout))
		}
	})
	sa.local, sa.remote = to, from
	sa.detectNAT(m.Payloads, 0, from, to)
	sa.suite, sa.keID, sa.prf, sa.ke = suite, keID, prf, ke
	sa.ni, sa.nr = p.nonce.Data, newNonce()
	sa.msg1 = append([]byte(nil), raw...)
	if err := sa.deriveKeys(gir); err != nil {
		sa.fail(err)
		return
	}
	resp := &Message{Header: sa.header(IKE_SA_INIT, true, 0), Payloads: []Payload{
		&SA{Proposals: []Proposal{chosen}},
		&KE{Group: uint16(keID), Data: ke.Public()},
		&Nonce{Data: sa.nr},
		&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: sa.natSourceHash(sa.spiR)},
		&Notify{NotifyType: NAT_DETECTION_DESTINATION_IP, Data: natDetection(sa.spiI, sa.spiR, sa.remote)},
		// RFC 6023: an initiator that announced it may leave the child SA
		// out of IKE_AUTH.
		&Notify{NotifyType: CHILDLESS_IKEV2_SUPPORTED},
	}}
	sa.peerChildless = findNotify(m.Payloads, CHILDLESS_IKEV2_SUPPORTED) != nil
	sa.msg2 = resp.Encode()
	sa.lastResp, sa.peerID, sa.state = sa.msg2, 1, stateInitDone
	sa.send(sa.msg2)
}

// processInitResponse handles the responder's answer: an error notify, a
// request for another key exchange method or a cookie, or the accepted
// proposal with its key exchange and nonce.
func (sa *IKESA) processInitResponse(raw []byte) {
	m, err := Decode(raw)
	if err != nil {
		sa.d.Stats.Malformed.Add(1)
		return
	}
	sa.stopRequest()
	if n := findNotify(m.Payloads, COOKIE); n != nil && sa.cookieTries < maxCookieTries {
		// Return the cookie; a second one (the responder's secret
		// changed) is tried too, within reason.
		sa.cookie = n.Data
		sa.cookieTries++
		if err := sa.startInit(); err != nil {
			sa.fail(err)
		}
		return
	}
	if n := findNotify(m.Payloads, INVALID_KE_PAYLOAD); n != nil && len(n.Data) == 2 {
		want := crypto.KEID(binary.BigEndian.Uint16(n.Data))
		if want != sa.keID && sa.offersKE(want) {
			sa.keID = want
			if err := sa.startInit(); err != nil {
				sa.fail(err)
			}
			return
		}
		sa.fail(fmt.Errorf("%w: INVALID_KE_PAYLOAD asks for %v, which we do not offer", ErrNotify, want))
		return
	}
	if n := firstErrorNotify(m.Payloads); n != nil {
		sa.fail(fmt.Errorf("%w: IKE_SA_INIT answered with notify %d", ErrNotify, n.NotifyType))
		return
	}
	p, err := collect(m.Payloads)
	if err != nil || p.sa == nil || p.ke == nil || p.nonce == nil || len(p.sa.Proposals) != 1 || m.SPIr == 0 {
		sa.fail(fmt.Errorf("%w: IKE_SA_INIT response without one SA, KE and nonce", ErrProtocol))
		return
	}
	chosen := p.sa.Proposals[0]
	if !offered(sa.cfg.IKE, chosen) {
		sa.fail(fmt.Errorf("%w: responder chose %v, which we did not offer", ErrProtocol, chosen))
		return
	}
	suite, keID, err := ikeSuite(chosen)
	if err != nil || keID != sa.keID || crypto.KEID(p.ke.Group) != keID {
		sa.fail(fmt.Errorf("%w: responder's key exchange does not match its proposal", ErrProtocol))
		return
	}
	gir, err := sa.ke.SharedSecret(p.ke.Data)
	if err != nil {
		sa.fail(fmt.Errorf("%w: %v", ErrProtocol, err))
		return
	}
	if sa.prf, err = crypto.NewPRF(suite.PRF); err != nil {
		sa.fail(err)
		return
	}
	if len(p.nonce.Data) < sa.prf.MinNonceLen() {
		sa.fail(fmt.Errorf("%w: responder nonce of %d bytes", ErrProtocol, len(p.nonce.Data)))
		return
	}
	sa.suite, sa.nr, sa.spiR = suite, p.nonce.Data, m.SPIr
	sa.msg2 = append([]byte(nil), raw...)
	sa.detectNAT(m.Payloads, sa.spiR, sa.remote, sa.local)
	sa.peerChildless = findNotify(m.Payloads, CHILDLESS_IKEV2_SUPPORTED) != nil
	if sa.behindNAT() {
		sa.float()
	}
	if err := sa.deriveKeys(gir); err != nil {
		sa.fail(err)
		return
	}
	if err := sa.startAuth(); err != nil {
		sa.fail(err)
	}
}

func (sa *IKESA) offersKE(id crypto.KEID) bool {
	for _, p := range sa.cfg.IKE {
		for _, t := range p.Transforms {
			if t.Type == TransformKE && crypto.KEID(t.ID) == id {
				return true
			}
		}
	}
	return false
}

// offered says the chosen proposal takes one of each type from one of ours.
func offered(ours []Proposal, chosen Proposal) bool {
	for _, o := range ours {
		if sel, ok := match(o, chosen); ok && len(sel.Transforms) == len(chosen.Transforms) {
			return true
		}
	}
	return false
}

// deriveKeys computes SKEYSEED and the seven keys (section 2.14) and
// builds the SK protection of each direction.
func (sa *IKESA) deriveKeys(gir []byte) error {
	skeyseed := crypto.DeriveSKEYSEED(sa.prf, sa.ni, sa.nr, gir)
	clear(gir)
	keys, err := crypto.DeriveIKEKeys(sa.suite, skeyseed, sa.ni, sa.nr, sa.spiI, sa.spiR)
	clear(skeyseed)
	if err != nil {
		return err
	}
	sa.keys = keys
	sa.logKeys()
	sa.out, sa.in, err = keys.SKs(sa.initiator)
	return err
}
