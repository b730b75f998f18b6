package control

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Retransmit holds the operator's retransmission constants, named and
// defaulted as strongSwan's charon.retransmit_* settings are, so that
// configurations translate.
type Retransmit struct {
	// Tries is how many times a request is retransmitted before the peer
	// is declared dead (default 5).
	Tries int
	// Timeout is the first wait (default 4 s).
	Timeout time.Duration
	// Base is the factor each wait grows by (default 1.8).
	Base float64
	// Jitter is the most, in percent (0 to 20), that a wait is shortened
	// by at random, so that many SAs do not retransmit in step.
	Jitter int
	// Limit caps a wait; 0 means no cap.
	Limit time.Duration
}

// DefaultRetransmit is strongSwan's default schedule: waits of 4, 7.2,
// 13, 23.3, 42 and 75.6 s, about 165 s in all before giving up.
var DefaultRetransmit = Retransmit{Tries: 5, Timeout: 4 * time.Second, Base: 1.8}

// Check rejects constants that make no schedule.
func (r Retransmit) Check() error {
	switch {
	case r.Tries < 0:
		return fmt.Errorf("retransmit-tries %d is negative", r.Tries)
	case r.Timeout <= 0:
		return fmt.Errorf("retransmit-timeout %v must be positive", r.Timeout)
	case r.Base < 1:
		return fmt.Errorf("retransmit-base %v must be at least 1", r.Base)
	case r.Jitter < 0 || r.Jitter > 20:
		return fmt.Errorf("retransmit-jitter %d%% must be 0 to 20", r.Jitter)
	case r.Limit < 0:
		return fmt.Errorf("retransmit-limit %v is negative", r.Limit)
	}
	return nil
}

// Wait is how long to wait after transmission number try (0 for the first
// send, up to Tries for the last retransmission) before retransmitting or,
// after the last, giving up: min(limit, timeout * base^try), less a random
// 0..jitter percent drawn from rnd (nil uses the global source).
func (r Retransmit) Wait(try int, rnd *rand.Rand) time.Duration {
	w := float64(r.Timeout) * math.Pow(r.Base, float64(try))
	if r.Limit > 0 && w > float64(r.Limit) {
		w = float64(r.Limit)
	}
	// Without a limit a large try overflows time.Duration; 2^62 ns is
	// about 146 years, long enough to mean never.
	w = min(w, 1<<62)
	if r.Jitter > 0 {
		var f float64
		if rnd != nil {
			f = rnd.Float64()
		} else {
			f = rand.Float64()
		}
		w -= w * float64(r.Jitter) / 100 * f
	}
	return time.Duration(w)
}

// Total is the longest a request can go unanswered before the peer is
// declared dead: the sum of all waits without jitter.
func (r Retransmit) Total() time.Duration {
	var t time.Duration
	nj := r
	nj.Jitter = 0
	for i := 0; i <= r.Tries; i++ {
		t += nj.Wait(i, nil)
	}
	return t
}
