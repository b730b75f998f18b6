package control

import "bytes"

// Several connections to one peer, sharing its addresses, identities and
// key, differ by their traffic selectors (and may by their ESP
// proposals), as the children of one swanctl.conf connection do. A peer
// negotiates the child SAs of all of them in one IKE SA. As responder we
// pick, for each child SA the peer asks for, the connection whose
// selectors fit it.

// samePeer reports whether a and b are configurations for the same peer:
// a child SA of an IKE SA made under one may belong to the other.
func samePeer(a, b *PeerConfig) bool {
	return a.Local.Addr() == b.Local.Addr() && a.Remote.Addr() == b.Remote.Addr() &&
		sameID(a.LocalID, b.LocalID) && sameID(a.RemoteID, b.RemoteID) && bytes.Equal(a.PSK, b.PSK)
}

// childConfigs are the configurations a child SA of sa may be negotiated
// under: sa's own first, then the others for the same peer in
// configuration order.
func (sa *IKESA) childConfigs() []*PeerConfig {
	out := []*PeerConfig{sa.cfg}
	for _, p := range sa.d.peers {
		if p != sa.cfg && samePeer(p, sa.cfg) {
			out = append(out, p)
		}
	}
	return out
}

// childChoice is what a responder settles for a child SA.
type childChoice struct {
	cfg      *PeerConfig
	prop     Proposal
	tsi, tsr []TrafficSelector // narrowed, the initiator's and ours
}

// chooseChild picks, among cfgs, the configuration for a child SA with the
// proposals props and the selectors tsi (the initiator's side) and tsr:
// one that accepts a proposal and whose selectors hold all of those
// proposed, if any does, else the first that accepts a proposal and some
// of them (section 2.9 narrowing). ike says the proposals are IKE_AUTH's,
// where key exchange transforms mean nothing. When none fits, it returns
// the notify to refuse with: NO_PROPOSAL_CHOSEN if no configuration
// accepts a proposal, TS_UNACCEPTABLE if none accepts the selectors.
func chooseChild(cfgs []*PeerConfig, props []Proposal, tsi, tsr []TrafficSelector, ike bool) (childChoice, NotifyType) {
	var partial childChoice
	anyProposal := false
	if ike {
		props = withoutKE(props)
	}
	for _, cfg := range cfgs {
		ours := cfg.ESP
		if ike {
			ours = withoutKE(ours)
		}
		prop, ok := SelectProposal(ours, props)
		if !ok || len(prop.SPI) != 4 {
			continue
		}
		anyProposal = true
		if within(tsi, cfg.RemoteTS) && within(tsr, cfg.LocalTS) {
			return childChoice{cfg: cfg, prop: prop, tsi: tsi, tsr: tsr}, 0
		}
		if partial.cfg != nil {
			continue
		}
		ni, nr := narrow(tsi, cfg.RemoteTS), narrow(tsr, cfg.LocalTS)
		if len(ni) > 0 && len(nr) > 0 {
			partial = childChoice{cfg: cfg, prop: prop, tsi: ni, tsr: nr}
		}
	}
	switch {
	case partial.cfg != nil:
		return partial, 0
	case !anyProposal:
		return childChoice{}, NO_PROPOSAL_CHOSEN
	}
	return childChoice{}, TS_UNACCEPTABLE
}
