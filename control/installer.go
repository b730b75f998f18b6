package control

import (
	"net/netip"

	"github.com/espx/espx/crypto"
)

// Installer is how the control plane puts child SAs into the data plane.
// It has the shape of the kernel's XFRM interface, so that the IKE daemon
// can be tested against a fake and the data plane driven without IKE.
type Installer interface {
	// AllocSPI reserves an inbound SPI for an SA being negotiated.
	AllocSPI() (uint32, error)
	// AddSA installs one direction of a child SA.
	AddSA(sa *ChildSA) error
	// DeleteSA removes one direction of a child SA.
	DeleteSA(spi uint32, inbound bool) error
}

// ChildSA is one direction of a negotiated child SA as the data plane needs
// it.
type ChildSA struct {
	// Conn names the configuration (PeerConfig.Name) the child SA was
	// negotiated under: with several connections to one peer, the one
	// whose selectors it fits.
	Conn    string
	Inbound bool
	SPI     uint32
	// Transform holds the keys; it never prints them.
	Transform crypto.Config
	ESN       bool
	// Local and Remote are the outer addresses (and ports, for UDP
	// encapsulation) of this gateway and of the peer.
	Local, Remote netip.AddrPort
	Encap         bool
	ReplayWindow  int
	// LocalTS and RemoteTS are the negotiated traffic selectors: inner
	// packets must fall in them.
	LocalTS, RemoteTS []TrafficSelector
}
