package control

import (
	"encoding/binary"
	"fmt"

	"github.com/espx/espx/crypto"
)

// Rekeying the IKE SA ourselves (RFC 7296 section 2.18): a CREATE_CHILD_SA
// on the old IKE SA with an IKE proposal carrying our new SPI, a nonce and
// a key exchange. On the answer the new IKE SA, of which we are the
// original initiator, takes over the child SAs, and we delete the old one.
//
// When both ends rekey at once (section 2.8.2), each answers the other and
// two new IKE SAs exist at each end. Of the four nonces, the lowest marks
// the exchange whose SA is redundant: its initiator deletes it, the
// children go to the other one, and the initiator of that surviving SA
// deletes the old one. Both ends reach the same verdict from the same
// nonces.

// RekeyIKE rekeys the established IKE SA of the connection name.
func (d *Daemon) RekeyIKE(name string) error {
	for _, sa := range d.sas.byName(name) {
		sa.mu.Lock()
		if sa.state == stateEstablished {
			sa.enqueue(sa.startIKERekey)
			sa.mu.Unlock()
			return nil
		}
		sa.mu.Unlock()
	}
	return fmt.Errorf("%w %q: no established IKE SA", ErrNoPeer, name)
}

func (sa *IKESA) startIKERekey() {
	spi := newSPI()
	ni := newNonce()
	ke, err := crypto.NewKeyExchange(sa.keID)
	if err != nil {
		sa.d.log.Warn("IKE rekey: key exchange", "err", err)
		return
	}
	props := make([]Proposal, len(sa.cfg.IKE))
	for i, p := range sa.cfg.IKE {
		p.SPI = binary.BigEndian.AppendUint64(nil, spi)
		props[i] = p
	}
	inner := []Payload{&SA{Proposals: props}, &Nonce{Data: ni}, &KE{Group: uint16(sa.keID), Data: ke.Public()}}
	id := sa.nextRequestID()
	b, err := (&Message{Header: sa.header(CREATE_CHILD_SA, false, id)}).EncodeEncrypted(inner, sa.out)
	if err != nil {
		sa.fail(err)
		return
	}
	sa.ikeRekeying = true
	sa.sendRequest(b, id, CREATE_CHILD_SA, func(raw []byte) { sa.ikeRekeyResponse(raw, spi, ni, ke) })
}

func (sa *IKESA) ikeRekeyResponse(raw []byte, spi uint64, ni []byte, ke crypto.KeyExchange) {
	ps, ok := sa.open(raw)
	if !ok {
		return
	}
	sa.stopRequest()
	sa.ikeRekeying = false
	abandon := func(why string, args ...any) {
		sa.d.log.Warn("IKE rekey failed", append([]any{"peer", sa.cfg.Name, "why", why}, args...)...)
	}
	if n := firstErrorNotify(ps); n != nil {
		abandon("refused", "notify", n.NotifyType)
		return
	}
	p, err := collect(ps)
	if err != nil || p.sa == nil || len(p.sa.Proposals) != 1 || p.nonce == nil || p.ke == nil {
		abandon("incomplete answer")
		return
	}
	chosen := p.sa.Proposals[0]
	if !offered(sa.cfg.IKE, chosen) || len(chosen.SPI) != 8 {
		abandon("answer does not fit our request")
		return
	}
	suite, keID, err := ikeSuite(chosen)
	if err != nil || keID != sa.keID || crypto.KEID(p.ke.Group) != keID {
		abandon("key exchange group", "group", p.ke.Group)
		return
	}
	prf, err := crypto.NewPRF(suite.PRF)
	if err != nil || len(p.nonce.Data) < prf.MinNonceLen() {
		abandon("nonce")
		return
	}
	gir, err := ke.SharedSecret(p.ke.Data)
	if err != nil {
		abandon("bad KE", "err", err)
		return
	}
	n, err := sa.successor(true, spi, binary.BigEndian.Uint64(chosen.SPI), prf, suite, keID, ni, p.nonce.Data, gir)
	if err != nil {
		abandon("keys", "err", err)
		return
	}
	n.children, sa.children = sa.children, nil
	n.state = stateEstablished
	n.armKeepalive()
	close(n.done)
	sa.d.sas.put(n.spiI, n)
	if peer := sa.peerRekeyed; peer != nil {
		// Counted once, when we answered the peer's rekey.
		sa.peerRekeyed = nil
		sa.settleIKECollision(n, peer)
		return
	}
	sa.d.Stats.IKERekeys.Add(1)
	sa.d.log.Info("IKE SA rekeyed", "peer", sa.cfg.Name, "ike", suite.String(),
		"old_spi_i", fmt.Sprintf("%016x", sa.spiI), "new_spi_i", fmt.Sprintf("%016x", n.spiI))
	// The old SA goes; its children live on in the new one.
	sa.queue = append([]func(){sa.startDeleteIKE}, sa.queue...)
}

// settleIKECollision decides between ours, the IKE SA our rekey made, and
// peer, the one the peer's rekey made, section 2.8.2: the SA of the
// exchange with the lowest of the four nonces is redundant. The children,
// which went to the peer's SA when we answered its request, end in the
// survivor. sa is the old IKE SA and is locked; the new ones are not yet
// reachable by anyone else's message handling that matters here.
func (sa *IKESA) settleIKECollision(ours, peer *IKESA) {
	sa.d.Stats.IKERekeyCollisions.Add(1)
	low := lowest(ours.ni, ours.nr, peer.ni, peer.nr)
	oursRedundant := string(low) == string(ours.ni) || string(low) == string(ours.nr)
	survivor, redundant := peer, ours
	if !oursRedundant {
		survivor, redundant = ours, peer
	}
	peer.mu.Lock()
	children := peer.children
	peer.children = nil
	peer.mu.Unlock()
	survivor.mu.Lock()
	survivor.children = append(survivor.children, children...)
	survivor.mu.Unlock()
	sa.d.log.Info("IKE SA rekeyed by both ends at once", "peer", sa.cfg.Name,
		"survivor_spi_i", fmt.Sprintf("%016x", survivor.spiI), "redundant_spi_i", fmt.Sprintf("%016x", redundant.spiI))
	if oursRedundant {
		// We made the redundant SA: we delete it. The peer made the
		// survivor and deletes the old one.
		go func() {
			ours.mu.Lock()
			defer ours.mu.Unlock()
			ours.enqueue(ours.startDeleteIKE)
		}()
		return
	}
	// Ours survives: the peer deletes its redundant SA, and we the old.
	sa.queue = append([]func(){sa.startDeleteIKE}, sa.queue...)
}

// successor is the IKE SA that rekeying sa makes (RFC 7296 section
// 2.18), with its keys from SKEYSEED = prf(SK_d (old), g^ir (new) | Ni |
// Nr); initiator says whether we started the rekey. gir is cleared.
func (sa *IKESA) successor(initiator bool, spiI, spiR uint64, prf crypto.PRF, suite crypto.IKESuite, keID crypto.KEID, ni, nr, gir []byte) (*IKESA, error) {
	n := &IKESA{
		d: sa.d, cfg: sa.cfg, initiator: initiator, spiI: spiI, spiR: spiR,
		local: sa.local, remote: sa.remote, natLocal: sa.natLocal, natRemote: sa.natRemote,
		prf: prf, suite: suite, keID: keID, ni: ni, nr: nr,
		lastHeard: sa.lastHeard, upSince: sa.d.clock.Now(), done: make(chan struct{}),
	}
	skeyseed := crypto.DeriveRekeySKEYSEED(sa.prf, sa.keys.SKd, gir, ni, nr)
	clear(gir)
	keys, err := crypto.DeriveIKEKeys(suite, skeyseed, ni, nr, spiI, spiR)
	clear(skeyseed)
	if err != nil {
		return nil, err
	}
	n.keys = keys
	n.logKeys()
	n.out, n.in, err = keys.SKs(initiator)
	return n, err
}
