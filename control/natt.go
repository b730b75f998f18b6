package control

import (
	"bytes"
	"crypto/rand"
	"net/netip"
)

// NAT traversal (RFC 7296 section 2.23, RFC 3948): each side hashes the
// addresses and ports it sends from and to into NAT_DETECTION_*_IP
// notifies; a mismatch means a NAT rewrote them on the way. Then IKE moves
// to port 4500, where its messages carry a four-byte zero "non-ESP marker"
// to tell them from UDP-encapsulated ESP, and child SAs encapsulate ESP in
// UDP. strongSwan's libipsec pretends to be behind a NAT (a random source
// hash) to force this, and PeerConfig.ForceEncap does the same.

// PortNATT is the IKE and ESP-in-UDP port of NAT traversal.
const PortNATT = 4500

const nonESPMarkerLen = 4

// natSourceHash is our NAT_DETECTION_SOURCE_IP: the real hash, or random
// bytes when the configuration forces UDP encapsulation.
func (sa *IKESA) natSourceHash(spiR uint64) []byte {
	if sa.cfg.ForceEncap {
		b := make([]byte, 20)
		rand.Read(b)
		return b
	}
	return natDetection(sa.spiI, spiR, sa.local)
}

// detectNAT checks the peer's NAT_DETECTION notifies of an IKE_SA_INIT
// message that came from from to to, whose header carried spiR (zero in
// the request). A missing notify means the peer does not do NAT traversal.
func (sa *IKESA) detectNAT(ps []Payload, spiR uint64, from, to netip.AddrPort) {
	var srcSeen, srcMatch bool
	for _, p := range ps {
		n, ok := p.(*Notify)
		if !ok {
			continue
		}
		switch n.NotifyType {
		case NAT_DETECTION_SOURCE_IP:
			srcSeen = true
			srcMatch = srcMatch || bytes.Equal(n.Data, natDetection(sa.spiI, spiR, from))
		case NAT_DETECTION_DESTINATION_IP:
			if !bytes.Equal(n.Data, natDetection(sa.spiI, spiR, to)) {
				sa.natLocal = true
			}
		}
	}
	sa.natRemote = srcSeen && !srcMatch
	sa.natLocal = sa.natLocal || sa.cfg.ForceEncap
}

// behindNAT says IKE should float to 4500 and ESP be encapsulated.
func (sa *IKESA) behindNAT() bool { return sa.natLocal || sa.natRemote }

// float moves the IKE SA to port 4500 at both ends (section 2.23).
func (sa *IKESA) float() {
	sa.local = netip.AddrPortFrom(sa.local.Addr(), PortNATT)
	sa.remote = netip.AddrPortFrom(sa.remote.Addr(), PortNATT)
}

// withMarker prefixes a message for port 4500.
func withMarker(b []byte) []byte {
	return append(make([]byte, nonESPMarkerLen, nonESPMarkerLen+len(b)), b...)
}
