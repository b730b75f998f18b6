package control

import "time"

// NAT keepalives (RFC 3948 section 4): an end behind a NAT sends a
// one-byte 0xFF datagram to the peer's port 4500 at an interval, so that
// the NAT keeps the mapping that the peer's ESP and IKE come back through
// while the tunnel is quiet. strongSwan's default interval is 20 s.

// DefaultKeepalive is the NAT keepalive interval when PeerConfig leaves it
// zero.
const DefaultKeepalive = 20 * time.Second

// armKeepalive starts the keepalives of an established IKE SA whose local
// end is behind a NAT (or pretends to be); sa.mu is held.
func (sa *IKESA) armKeepalive() {
	if !sa.natLocal || sa.cfg.Keepalive < 0 {
		return
	}
	every := sa.cfg.Keepalive
	if every == 0 {
		every = DefaultKeepalive
	}
	var tick func()
	tick = func() {
		sa.mu.Lock()
		defer sa.mu.Unlock()
		if sa.state != stateEstablished {
			return // deleted, or replaced by a rekey: its successor keeps on
		}
		sa.d.Stats.Keepalives.Add(1)
		sa.d.conn.Send([]byte{0xff}, sa.local, sa.remote)
		sa.d.clock.AfterFunc(every, tick)
	}
	sa.d.clock.AfterFunc(every, tick)
}
