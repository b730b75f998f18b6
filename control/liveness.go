package control

import (
	"errors"
	"fmt"
	"time"
)

// Liveness checks of our own (RFC 7296 section 2.4): an INFORMATIONAL
// request with no payloads, which the peer must answer. It goes through
// the same retransmission schedule as every request, and a peer that
// answers none of the tries is dead: the IKE SA is closed with its child
// SAs (request.go), and Dead reports it.

// ErrPeerDead is what Dead reports of an IKE SA closed because the peer
// stopped answering.
var ErrPeerDead = errors.New("peer dead")

// CheckLiveness sends a liveness check on the IKE SA that holds the child
// SA whose inbound or outbound SPI is spi, unless one of our requests is
// outstanding already (its answer, or its lack of one, tells the same).
func (d *Daemon) CheckLiveness(spi uint32) error {
	sa, _ := d.findChild(spi)
	if sa == nil {
		return fmt.Errorf("%w: %08x", ErrNoChild, spi)
	}
	defer sa.mu.Unlock()
	if sa.req != nil || len(sa.queue) > 0 {
		return nil
	}
	sa.enqueue(sa.startLiveness)
	return nil
}

func (sa *IKESA) startLiveness() {
	id := sa.nextRequestID()
	b, err := (&Message{Header: sa.header(INFORMATIONAL, false, id)}).EncodeEncrypted(nil, sa.out)
	if err != nil {
		sa.fail(err)
		return
	}
	sa.sendRequest(b, id, INFORMATIONAL, func(raw []byte) {
		if _, ok := sa.open(raw); !ok {
			return
		}
		sa.stopRequest()
	})
}

// LastHeard is when the peer last sent an authenticated message on the
// IKE SA that holds the child SA with spi (zero if none is known).
func (d *Daemon) LastHeard(spi uint32) time.Time {
	sa, _ := d.findChild(spi)
	if sa == nil {
		return time.Time{}
	}
	defer sa.mu.Unlock()
	return sa.lastHeard
}

// Dead reports whether the IKE SA was closed because its peer stopped
// answering.
func (sa *IKESA) Dead() bool {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	return sa.dead
}
