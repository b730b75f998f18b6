package dataplane

import (
	"sync"
	"time"

	"github.com/espx/espx/spd"
)

// AcquireConfig configures on-demand SAs: what happens to packets that hit
// a trap policy while no SA is installed for it.
type AcquireConfig struct {
	// Timeout is how long one acquire stands for its policy: further
	// packets raise none until it passes or an SA is installed. 0 means
	// 30 s, XFRM's default (net.core.xfrm_acq_expires).
	Timeout time.Duration
	// Hold is how many packets per pending acquire are kept and sent once
	// the SA is installed, so that the first packet of a connection is
	// not lost; the rest are dropped and counted. 0 means 8; negative
	// holds none.
	Hold int
	// MaxHeld bounds the packets held across all pending acquires. 0
	// means 1024.
	MaxHeld int
	// Rate and Burst limit new acquires as a whole, per second, so that a
	// scan of many destinations cannot flood the control plane. 0 means
	// 100 and 100.
	Rate  float64
	Burst int
}

func (c *AcquireConfig) defaults() {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Hold == 0 {
		c.Hold = 8
	}
	if c.Hold < 0 {
		c.Hold = 0
	}
	if c.MaxHeld == 0 {
		c.MaxHeld = 1024
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Burst == 0 {
		c.Burst = 100
	}
}

// heldBufSize fits any packet a 4096-byte UMEM frame carries.
const heldBufSize = 4096

type heldPkt struct {
	worker int
	buf    []byte // a pool buffer, sliced to the packet
}

type pendingAcquire struct {
	reqid   uint64
	expires time.Time
	held    []heldPkt
}

// acquirer keeps the pending acquires. Workers reach it only for packets
// that hit a trap with no SA, which is not the steady state, so a mutex
// serves; the buffers for held packets are pooled and bounded.
type acquirer struct {
	cfg AcquireConfig
	dp  *Dataplane

	mu      sync.Mutex
	pending map[spd.ID]*pendingAcquire
	tokens  float64
	last    time.Time
	held    int
	pool    [][]byte
	made    int
}

func newAcquirer(cfg AcquireConfig, dp *Dataplane) *acquirer {
	cfg.defaults()
	return &acquirer{cfg: cfg, dp: dp, pending: make(map[spd.ID]*pendingAcquire), tokens: float64(cfg.Burst)}
}

// acquireResult says what hit did with a packet.
type acquireResult uint8

const (
	acqDropped    acquireResult = iota // not held: count DropAcquire
	acqHeld                            // held for the SA to come
	acqRaised                          // raised an acquire and held the packet
	acqRaisedDrop                      // raised an acquire, packet not held
)

// hit handles a packet of worker w that matched the trap policy e, with
// selector k, while its SA was missing. The packet is copied when held;
// the caller frees its frame either way.
func (a *acquirer) hit(w int, e *spd.Entry, k *spd.Key, pkt []byte, now time.Time) acquireResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := e.ID()
	p := a.pending[id]
	raised := false
	if p == nil {
		if !a.allow(now) {
			return acqDropped
		}
		p = &pendingAcquire{reqid: e.SA(), expires: now.Add(a.cfg.Timeout)}
		a.pending[id] = p
		a.dp.emit(Event{Kind: EventAcquire, Policy: e.Policy(), ID: id, Packet: *k})
		raised = true
	}
	held := false
	if len(p.held) < a.cfg.Hold && a.held < a.cfg.MaxHeld && len(pkt) <= heldBufSize {
		buf := a.get()
		buf = buf[:copy(buf[:heldBufSize], pkt)]
		p.held = append(p.held, heldPkt{worker: w, buf: buf})
		a.held++
		held = true
	}
	// The SA may have been installed between the worker's lookup and now,
	// and its release may already have run: then nothing would send what
	// is held here. Release again; it is cheap and idempotent.
	if a.dp.sad.out.get(p.reqid) != nil {
		a.releaseLocked(p.reqid)
	}
	switch {
	case raised && held:
		return acqRaised
	case raised:
		return acqRaisedDrop
	case held:
		return acqHeld
	}
	return acqDropped
}

// allow takes a token of the acquire rate limit. Caller holds mu.
func (a *acquirer) allow(now time.Time) bool {
	if !a.last.IsZero() {
		a.tokens += now.Sub(a.last).Seconds() * a.cfg.Rate
	}
	a.last = now
	a.tokens = min(a.tokens, float64(a.cfg.Burst))
	if a.tokens < 1 {
		return false
	}
	a.tokens--
	return true
}

func (a *acquirer) get() []byte {
	if n := len(a.pool); n > 0 {
		b := a.pool[n-1]
		a.pool = a.pool[:n-1]
		return b[:cap(b)]
	}
	a.made++
	return make([]byte, heldBufSize)
}

// put returns a held packet's buffer to the pool.
func (a *acquirer) put(b []byte) {
	a.mu.Lock()
	a.held--
	a.pool = append(a.pool, b[:0])
	a.mu.Unlock()
}

// release ends the pending acquires of policies that use reqid and hands
// their held packets to the workers that held them, to send through the
// SA now installed.
func (a *acquirer) release(reqid uint64) {
	a.mu.Lock()
	a.releaseLocked(reqid)
	a.mu.Unlock()
}

func (a *acquirer) releaseLocked(reqid uint64) {
	var ws []*Worker
	if p := a.dp.workers.Load(); p != nil {
		ws = *p
	}
	for id, p := range a.pending {
		if p.reqid != reqid {
			continue
		}
		delete(a.pending, id)
		for _, h := range p.held {
			if h.worker < len(ws) {
				ws[h.worker].inject(h.buf)
			} else {
				a.held--
				a.pool = append(a.pool, h.buf[:0])
			}
		}
	}
}

// forget drops the pending acquire of a deleted policy.
func (a *acquirer) forget(id spd.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.pending[id]; p != nil {
		a.dropLocked(p)
		delete(a.pending, id)
	}
}

// expire ends the acquires whose timeout passed, dropping what they held:
// the negotiation failed or is slow, and the next packet may try again.
func (a *acquirer) expire(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, p := range a.pending {
		if now.After(p.expires) {
			a.dropLocked(p)
			delete(a.pending, id)
		}
	}
}

func (a *acquirer) dropLocked(p *pendingAcquire) {
	for _, h := range p.held {
		a.held--
		a.pool = append(a.pool, h.buf[:0])
	}
	a.dp.heldExpired.Add(uint64(len(p.held)))
	p.held = nil
}

// PendingAcquires is the number of pending acquires.
func (dp *Dataplane) PendingAcquires() int {
	dp.acq.mu.Lock()
	defer dp.acq.mu.Unlock()
	return len(dp.acq.pending)
}
