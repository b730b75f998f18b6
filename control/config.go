package control

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// PeerConfig is one configured peer and the tunnel to it: what the
// operator writes in a connection section.
type PeerConfig struct {
	Name string
	// Local and Remote are the IKE endpoints (port 500 normally).
	Local, Remote netip.AddrPort
	// LocalID and RemoteID identify the two ends in IKE_AUTH.
	LocalID, RemoteID *ID
	// PSK is the pre-shared key. It is never logged.
	PSK []byte
	// IKE and ESP proposals, in order of preference.
	IKE, ESP []Proposal
	// LocalTS and RemoteTS are the traffic the child SA protects.
	LocalTS, RemoteTS []TrafficSelector
	// ReplayWindow for the inbound child SA; DefaultReplayWindow if 0,
	// and -1 disables it.
	ReplayWindow int
	Retransmit   Retransmit
	// ForceEncap pretends a NAT is present so that ESP goes in UDP
	// whatever the path, as strongSwan's encap=yes does.
	ForceEncap bool
	// Keepalive is the NAT keepalive interval when this end is behind a
	// NAT: 0 means DefaultKeepalive, negative none.
	Keepalive time.Duration
	// Childless asks for an IKE SA without a child SA (RFC 6023) when the
	// responder supports it: the child SAs follow with CREATE_CHILD_SA.
	// As responder espx always supports it.
	Childless bool
}

// DefaultReplayWindow matches the data plane's default.
const DefaultReplayWindow = 4096

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("invalid peer configuration")

// Check reports the first thing wrong with a configuration.
func (c *PeerConfig) Check() error {
	switch {
	case !c.Local.IsValid() || !c.Remote.IsValid():
		return fmt.Errorf("%w %q: local and remote addresses are required", ErrConfig, c.Name)
	case c.LocalID == nil || c.RemoteID == nil:
		return fmt.Errorf("%w %q: local and remote identities are required", ErrConfig, c.Name)
	case len(c.PSK) < 16:
		return fmt.Errorf("%w %q: a pre-shared key of at least 16 bytes is required", ErrConfig, c.Name)
	case len(c.IKE) == 0 || len(c.ESP) == 0:
		return fmt.Errorf("%w %q: IKE and ESP proposals are required", ErrConfig, c.Name)
	case len(c.LocalTS) == 0 || len(c.RemoteTS) == 0:
		return fmt.Errorf("%w %q: local and remote traffic selectors are required", ErrConfig, c.Name)
	}
	if err := c.Retransmit.Check(); err != nil {
		return fmt.Errorf("%w %q: %v", ErrConfig, c.Name, err)
	}
	return nil
}

func (c *PeerConfig) replayWindow() int {
	switch {
	case c.ReplayWindow == 0:
		return DefaultReplayWindow
	case c.ReplayWindow < 0:
		return 0
	}
	return c.ReplayWindow
}
