package control

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeClock runs timers only when a test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves time on by d, firing due timers in order; settle runs
// after each so that what a timer sends is delivered before the next.
func (c *fakeClock) Advance(d time.Duration, settle func()) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		sort.Slice(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(end) {
				next = t
				break
			}
		}
		if next == nil {
			break
		}
		next.stopped = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
		settle()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// settle waits until the fake network has delivered everything sent.
func (n *fakeNet) settle() {
	for {
		n.mu.Lock()
		idle := n.busy == 0
		n.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// withClock gives both daemons one fake clock, and records when each
// datagram was sent.
func withClock(p *peers) (*fakeClock, *[]time.Duration) {
	c := newFakeClock()
	start := c.Now()
	p.a.clock, p.b.clock = c, c
	var times []time.Duration
	p.net.onSend = func(d datagram) {
		h, _ := DecodeHeader(d.b)
		if d.from == gwA && !h.IsResponse() {
			times = append(times, c.Now().Sub(start))
		}
	}
	return c, &times
}

func TestRetransmitLostRequests(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	clock, sent := withClock(p)
	lost := 0
	p.net.hook = func(d datagram) []datagram {
		h, _ := DecodeHeader(d.b)
		if h.Exchange == IKE_SA_INIT && !h.IsResponse() && lost < 2 {
			lost++
			return nil
		}
		return []datagram{d}
	}
	sa, err := p.a.Initiate("to-b")
	if err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	clock.Advance(4*time.Second, p.net.settle)
	if sa.State() != "INIT_SENT" {
		t.Fatalf("state %s after the first retransmission was lost", sa.State())
	}
	clock.Advance(7200*time.Millisecond, p.net.settle)
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	// IKE_SA_INIT at 0, 4 and 11.2 s, then IKE_AUTH at once.
	want := []time.Duration{0, 4 * time.Second, 11200 * time.Millisecond, 11200 * time.Millisecond}
	if len(*sent) != len(want) {
		t.Fatalf("requests at %v, want %v", *sent, want)
	}
	for i := range want {
		if (*sent)[i] != want[i] {
			t.Fatalf("requests at %v, want %v", *sent, want)
		}
	}
	if p.a.Stats.Retransmits.Load() != 2 {
		t.Errorf("%d retransmissions counted", p.a.Stats.Retransmits.Load())
	}
	// Nothing is pending any more: time passing sends nothing.
	clock.Advance(10*time.Minute, p.net.settle)
	if len(*sent) != len(want) {
		t.Errorf("more requests after the SA was up: %v", *sent)
	}
}

func TestRetransmitGivesUp(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", func(a, b *PeerConfig) {
		a.Retransmit = Retransmit{Tries: 3, Timeout: 2 * time.Second, Base: 2}
	})
	clock, sent := withClock(p)
	p.net.hook = func(datagram) []datagram { return nil } // the peer is gone
	sa, _ := p.a.Initiate("to-b")
	p.net.settle()
	// Waits of 2, 4, 8 and 16 s: the SA fails at 30 s, not before.
	clock.Advance(29*time.Second, p.net.settle)
	if sa.State() != "INIT_SENT" {
		t.Fatalf("state %s at 29 s", sa.State())
	}
	clock.Advance(time.Second, p.net.settle)
	if err := waitSA(t, sa); err == nil || !errorsIs(err, ErrTimeout) {
		t.Fatalf("%v, want ErrTimeout", err)
	}
	want := []time.Duration{0, 2 * time.Second, 6 * time.Second, 14 * time.Second}
	if len(*sent) != len(want) {
		t.Fatalf("requests at %v, want %v", *sent, want)
	}
	for i := range want {
		if (*sent)[i] != want[i] {
			t.Fatalf("requests at %v, want %v", *sent, want)
		}
	}
}

func TestRetransmitLostResponse(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	clock, _ := withClock(p)
	dropped := false
	p.net.hook = func(d datagram) []datagram {
		h, _ := DecodeHeader(d.b)
		if h.Exchange == IKE_AUTH && h.IsResponse() && !dropped {
			dropped = true
			return nil
		}
		return []datagram{d}
	}
	sa, _ := p.a.Initiate("to-b")
	p.net.settle()
	if sa.State() != "AUTH_SENT" {
		t.Fatalf("state %s", sa.State())
	}
	clock.Advance(4*time.Second, p.net.settle)
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	if p.b.Stats.Retransmitted.Load() != 1 {
		t.Errorf("responder resent its cached response %d times", p.b.Stats.Retransmitted.Load())
	}
	checkChildPair(t, p)
}
