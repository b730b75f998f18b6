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
	b        []byte
	id       uint32
	exchange ExchangeType
	// handle processes the response; it runs with sa.mu held.
	handle func(raw []byte)
	tries  int
	timer  Timer
}

// sendRequest sends a request and arms its retransmission; sa.mu is held.
func (sa *IKESA) sendRequest(b []byte, id uint32, ex ExchangeType, handle func([]byte)) {
	sa.stopRequest()
	sa.req = &request{b: b, id: id, exchange: ex, handle: handle}
	sa.send(b)
	sa.arm()
}

// enqueue runs start, which sends a request, once no other request of ours
// is outstanding; sa.mu is held.
func (sa *IKESA) enqueue(start func()) {
	sa.queue = append(sa.queue, start)
	sa.startNext()
}

// startNext starts the next queued exchange if the way is clear.
func (sa *IKESA) startNext() {
	for sa.req == nil && len(sa.queue) > 0 && sa.state == stateEstablished {
		start := sa.queue[0]
		sa.queue = sa.queue[1:]
		start()
	}
}

// nextRequestID hands out the message ID of our next request.
func (sa *IKESA) nextRequestID() uint32 {
	id := sa.nextID
	sa.nextID++
	return id
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
		err := fmt.Errorf("%w: no response to message %d after %d retransmissions", ErrTimeout, r.id, r.tries)
		if sa.state == stateEstablished {
			// The peer is gone: so are our SAs with it.
			sa.d.log.Warn("peer dead", "peer", sa.cfg.Name, "err", err)
			sa.dead = true
			sa.d.Stats.DeadPeers.Add(1)
			sa.closeIKE()
			return
		}
		sa.fail(err)
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
