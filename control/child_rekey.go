package control

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/espx/espx/crypto"
)

// Rekeying a child SA ourselves (RFC 7296 section 1.3.3): a CREATE_CHILD_SA
// with REKEY_SA naming the old SA by our inbound SPI, the new SA installed
// when the answer comes, then an INFORMATIONAL deleting the old one.

// ErrNoChild: no child SA has that SPI.
var ErrNoChild = errors.New("no such child SA")

// RekeyChild rekeys the child SA whose inbound or outbound SPI is spi.
func (d *Daemon) RekeyChild(spi uint32) error {
	sa, c := d.findChild(spi)
	if sa == nil {
		return fmt.Errorf("%w: %08x", ErrNoChild, spi)
	}
	defer sa.mu.Unlock()
	sa.enqueue(func() { sa.startChildRekey(c) })
	return nil
}

// findChild finds the IKE SA holding a child SA and returns it locked.
func (d *Daemon) findChild(spi uint32) (*IKESA, *child) {
	for _, sa := range d.sas.all() {
		sa.mu.Lock()
		if c := sa.childBySPI(spi); c != nil && sa.state == stateEstablished {
			return sa, c
		}
		sa.mu.Unlock()
	}
	return nil, nil
}

// CreateChild negotiates a new child SA, with the connection's traffic
// selectors, on the established IKE SA of the connection name: how an
// IKE SA that lost its child (expired, or deleted by the peer) carries
// traffic again without a new IKE SA.
func (d *Daemon) CreateChild(name string) error {
	for _, sa := range d.sas.byName(name) {
		sa.mu.Lock()
		if sa.state == stateEstablished {
			sa.enqueue(func() { sa.startChildRekey(nil) })
			sa.mu.Unlock()
			return nil
		}
		sa.mu.Unlock()
	}
	return fmt.Errorf("%w %q: no established IKE SA", ErrNoPeer, name)
}

// CreateChild negotiates a new child SA on this IKE SA, which must be
// established.
func (sa *IKESA) CreateChild() error {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if sa.state != stateEstablished {
		return fmt.Errorf("%w %q: IKE SA not established", ErrNoPeer, sa.cfg.Name)
	}
	sa.enqueue(func() { sa.startChildRekey(nil) })
	return nil
}

// Children is the number of child SAs the IKE SA holds.
func (sa *IKESA) Children() int {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	return len(sa.children)
}

// CreateChildFor negotiates a new child SA on this IKE SA, which must be
// established, for the connection name: another configuration for the
// same peer (addresses, identities, key) whose traffic selectors and
// proposals it uses, as the children of one swanctl.conf connection
// share their IKE SA.
func (sa *IKESA) CreateChildFor(name string) error {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if sa.state != stateEstablished {
		return fmt.Errorf("%w %q: IKE SA not established", ErrNoPeer, sa.cfg.Name)
	}
	for _, cfg := range sa.childConfigs() {
		if cfg.Name == name {
			sa.enqueue(func() { sa.startChild(cfg, nil) })
			return nil
		}
	}
	return fmt.Errorf("%w %q for the peer of IKE SA %q", ErrNoPeer, name, sa.cfg.Name)
}

// startChildRekey rekeys old, or with old nil creates a new child SA of
// the IKE SA's own connection.
func (sa *IKESA) startChildRekey(old *child) {
	cfg := sa.cfg
	if old != nil {
		cfg = old.cfg
	}
	sa.startChild(cfg, old)
}

// startChild rekeys old, or with old nil creates a new child SA of the
// connection cfg.
func (sa *IKESA) startChild(cfg *PeerConfig, old *child) {
	if old != nil && sa.childBySPI(old.inSPI) != old {
		return // deleted meanwhile
	}
	spi, err := sa.d.inst.AllocSPI()
	if err != nil {
		sa.d.log.Warn("child rekey: no SPI", "err", err)
		return
	}
	ni := newNonce()
	props := make([]Proposal, len(cfg.ESP))
	var ke crypto.KeyExchange
	for i, p := range cfg.ESP {
		p.SPI = spiBytes(spi)
		props[i] = p
		for _, t := range p.Transforms {
			if t.Type == TransformKE && ke == nil && i == 0 {
				ke, _ = crypto.NewKeyExchange(crypto.KEID(t.ID))
			}
		}
	}
	var inner []Payload
	lts, rts := cfg.LocalTS, cfg.RemoteTS
	if old != nil {
		inner = append(inner, &Notify{Protocol: ProtoESP, SPI: spiBytes(old.inSPI), NotifyType: REKEY_SA})
		lts, rts = old.lts, old.rts
	}
	inner = append(inner, &SA{Proposals: props}, &Nonce{Data: ni})
	if ke != nil {
		inner = append(inner, &KE{Group: uint16(ke.Method()), Data: ke.Public()})
	}
	inner = append(inner, &TS{Selectors: lts}, &TS{Responder: true, Selectors: rts})
	id := sa.nextRequestID()
	b, err := (&Message{Header: sa.header(CREATE_CHILD_SA, false, id)}).EncodeEncrypted(inner, sa.out)
	if err != nil {
		sa.fail(err)
		return
	}
	if old != nil {
		old.rekeying = true
	}
	sa.sendRequest(b, id, CREATE_CHILD_SA, func(raw []byte) { sa.childRekeyResponse(raw, cfg, old, spi, ni, ke) })
}

func (sa *IKESA) childRekeyResponse(raw []byte, cfg *PeerConfig, old *child, spi uint32, ni []byte, ke crypto.KeyExchange) {
	ps, ok := sa.open(raw)
	if !ok {
		return
	}
	sa.stopRequest()
	if old != nil {
		old.rekeying = false
	}
	abandon := func(why string, args ...any) {
		sa.d.inst.DeleteSA(spi, true) // never installed; harmless
		sa.d.log.Warn("child rekey failed", append([]any{"peer", sa.cfg.Name, "why", why}, args...)...)
	}
	if n := firstErrorNotify(ps); n != nil {
		abandon("refused", "notify", n.NotifyType)
		return
	}
	p, err := collect(ps)
	if err != nil || p.sa == nil || len(p.sa.Proposals) != 1 || p.nonce == nil || p.tsi == nil || p.tsr == nil {
		abandon("incomplete answer")
		return
	}
	chosen := p.sa.Proposals[0]
	if !offered(cfg.ESP, chosen) || len(chosen.SPI) != 4 || len(p.nonce.Data) < sa.prf.MinNonceLen() {
		abandon("answer does not fit our request")
		return
	}
	var gir []byte
	if ke != nil {
		if p.ke == nil || crypto.KEID(p.ke.Group) != ke.Method() {
			abandon("no KE of our group")
			return
		}
		if gir, err = ke.SharedSecret(p.ke.Data); err != nil {
			abandon("bad KE", "err", err)
			return
		}
	}
	if !within(p.tsi.Selectors, cfg.LocalTS) || !within(p.tsr.Selectors, cfg.RemoteTS) {
		abandon("widened traffic selectors")
		return
	}
	c := &child{cfg: cfg, prop: chosen, inSPI: spi, outSPI: binary.BigEndian.Uint32(chosen.SPI), lts: p.tsi.Selectors, rts: p.tsr.Selectors}
	err = sa.installChild(c, gir, ni, p.nonce.Data, true)
	clear(gir)
	if err != nil {
		abandon("install", "err", err)
		return
	}
	if old == nil {
		sa.d.log.Info("child SA created", "peer", sa.cfg.Name, "spi_in", fmt.Sprintf("%08x", c.inSPI))
		return
	}
	// The new SA carries the traffic; delete the old one (section 1.3.3).
	next := []func(){func() { sa.startDeleteChild(old) }}
	if col := old.collision; col != nil {
		// Both ends rekeyed it: of the two new SAs, the one whose
		// exchange had the lowest of the four nonces is redundant and
		// goes, deleted by the end that started that exchange (section
		// 2.8.1). If that is ours, we delete it; else the peer deletes
		// the one it made.
		old.collision = nil
		if min := lowest(ni, p.nonce.Data, col.ni, col.nr); string(min) == string(ni) || string(min) == string(p.nonce.Data) {
			next = append(next, func() { sa.startDeleteChild(c) })
		}
	}
	sa.queue = append(next, sa.queue...)
}
