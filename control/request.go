package control

import (
	"errors"
	"fmt"
)

// ErrTimeout: the peer did not answer a request through all
// retransmissions.
var ErrTimeout = errors.New("peer did not answer")

// Our outstanding request (section 2.1: one at a time, as espx sends no
// window larger than 1) and its retransmission.
type request struct {
	b     []byte
	id    uint32
	tries int
	timer Timer
}

// sendRequest sends a request and arms its retransmission; sa.mu is held.
func (sa *IKESA) sendRequest(b []byte, id uint32) {
	sa.stopRequest()
	sa.req = &request{b: b, id: id}
	sa.send(b)
	sa.arm()
}

func (sa *IKESA) arm() {
	r := sa.req
	w := sa.cfg.Retransmit.Wait(r.tries, nil)
	r.timer = sa.d.clock.AfterFunc(w, func() {
		sa.mu.Lock()
		defer sa.mu.Unlock()
		sa.retransmit(r)
	})
}

// retransmit runs when a request's wait is over.
func (sa *IKESA) retransmit(r *request) {
	if sa.req != r {
		return // answered, or replaced, meanwhile
	}
	if r.tries >= sa.cfg.Retransmit.Tries {
		sa.req = nil
		sa.fail(fmt.Errorf("%w: no response to message %d after %d retransmissions", ErrTimeout, r.id, r.tries))
		return
	}
	r.tries++
	sa.d.Stats.Retransmits.Add(1)
	sa.send(r.b)
	sa.arm()
}

// stopRequest forgets the outstanding request once it is answered.
func (sa *IKESA) stopRequest() {
	if sa.req != nil {
		sa.req.timer.Stop()
		sa.req = nil
	}
}
