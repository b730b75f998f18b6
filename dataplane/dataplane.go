package dataplane

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/espx/espx/spd"
)

// Config is the data plane's configuration apart from SAs and policies.
type Config struct {
	// Thresholds are the SPD's sp-hash thresholds.
	Thresholds spd.Thresholds
	// DefaultBypass lets packets that match no policy pass in the clear,
	// as the kernel does when no policy matches. False discards them.
	DefaultBypass bool
	// Acquire configures on-demand SAs.
	Acquire AcquireConfig
	// Events is the size of the event queue to the control plane; 0
	// means 1024. Events that find it full are counted and lost.
	Events int
}

// EventKind says what an Event reports.
type EventKind uint8

// Events from the data plane to the control plane, as XFRM reports them
// (XFRM_MSG_ACQUIRE, XFRM_MSG_EXPIRE).
const (
	// EventAcquire: a packet hit a trap policy with no SA.
	EventAcquire EventKind = iota + 1
	// EventSoftExpire: an SA reached a soft limit (time, bytes, packets,
	// or for an outbound SA its soft sequence number): rekey it.
	EventSoftExpire
	// EventHardExpire: an SA reached a hard limit and was deleted.
	EventHardExpire
	// EventIdle: an SA carried no packet for its Lifetime.Idle.
	EventIdle
)

func (k EventKind) String() string {
	switch k {
	case EventAcquire:
		return "acquire"
	case EventSoftExpire:
		return "soft-expire"
	case EventHardExpire:
		return "hard-expire"
	case EventIdle:
		return "idle"
	}
	return "event(" + fmt.Sprint(uint8(k)) + ")"
}

// Event is a report from the data plane to the control plane.
type Event struct {
	Kind EventKind
	// Policy and Packet describe an acquire: the trap policy and the
	// selector of the packet that hit it (for TS narrowing, RFC 7296
	// section 2.9, the packet's own addresses go first).
	Policy spd.Policy
	ID     spd.ID
	Packet spd.Key
	// SPI, Inbound and ReqID name the SA of an expire or idle report, and
	// Reason says which limit: "time", "bytes", "packets", "seq" or
	// "idle".
	SPI     uint32
	Inbound bool
	ReqID   uint64
	Reason  string
	// LastUse, for EventIdle, is when the SA last carried a packet; zero
	// if never.
	LastUse time.Time
}

// Dataplane holds what the workers share: the SAD, the SPD and the
// pending acquires. It implements Installer for the control plane.
type Dataplane struct {
	cfg Config
	SPD *spd.DB
	sad *sad
	acq *acquirer

	events        chan Event
	eventsDropped atomic.Uint64
	// heldExpired counts held packets dropped because their acquire
	// timed out or their policy went.
	heldExpired atomic.Uint64

	workers atomic.Pointer[[]*Worker]
	now     func() time.Time
}

// New returns an empty data plane.
func New(cfg Config) (*Dataplane, error) {
	if cfg.Thresholds == (spd.Thresholds{}) {
		cfg.Thresholds = spd.DefaultThresholds()
	}
	db, err := spd.New(cfg.Thresholds)
	if err != nil {
		return nil, err
	}
	if cfg.Events == 0 {
		cfg.Events = 1024
	}
	dp := &Dataplane{cfg: cfg, SPD: db, sad: newSAD(), events: make(chan Event, cfg.Events), now: time.Now}
	dp.acq = newAcquirer(cfg.Acquire, dp)
	return dp, nil
}

// Events is where the data plane reports acquires and expiries.
func (dp *Dataplane) Events() <-chan Event { return dp.events }

// EventsDropped counts events lost because the queue was full.
func (dp *Dataplane) EventsDropped() uint64 { return dp.eventsDropped.Load() }

func (dp *Dataplane) emit(e Event) {
	select {
	case dp.events <- e:
	default:
		dp.eventsDropped.Add(1)
	}
}

// AllocSPI implements Installer.
func (dp *Dataplane) AllocSPI() (uint32, error) { return dp.sad.allocSPI(dp.now()) }

// AddSA implements Installer. Packets held for an acquire of a policy with
// the SA's ReqID go out as soon as an outbound SA for it is installed.
func (dp *Dataplane) AddSA(sa SA) error {
	if err := dp.sad.add(sa, dp.now(), false); err != nil {
		return err
	}
	if !sa.Inbound {
		dp.acq.release(sa.ReqID)
	}
	return nil
}

// UpdateSA implements Installer.
func (dp *Dataplane) UpdateSA(sa SA) error { return dp.sad.add(sa, dp.now(), true) }

// QuerySA implements Installer.
func (dp *Dataplane) QuerySA(spi uint32, inbound bool) (SAInfo, error) {
	return dp.sad.query(spi, inbound)
}

// DeleteSA implements Installer.
func (dp *Dataplane) DeleteSA(spi uint32, inbound bool) error { return dp.sad.del(spi, inbound) }

// AddPolicy implements Installer.
func (dp *Dataplane) AddPolicy(p spd.Policy) (spd.ID, error) { return dp.SPD.Insert(p) }

// DeletePolicy implements Installer. A pending acquire of the policy goes
// with it, and its held packets are dropped.
func (dp *Dataplane) DeletePolicy(id spd.ID) error {
	if err := dp.SPD.Delete(id); err != nil {
		return err
	}
	dp.acq.forget(id)
	return nil
}

// SAs lists the installed SAs.
func (dp *Dataplane) SAs() []SAInfo { return dp.sad.list() }

func sortBySPI(s []SAInfo) {
	slices.SortFunc(s, func(a, b SAInfo) int { return cmp.Compare(a.SPI, b.SPI) })
}

// expireInterval is how often Run checks lifetimes and acquire timeouts.
const expireInterval = 250 * time.Millisecond

// Run checks SA lifetimes and expires acquires until ctx is done.
func (dp *Dataplane) Run(ctx context.Context) {
	t := time.NewTicker(expireInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := dp.now()
			dp.expire(now)
			dp.acq.expire(now)
		}
	}
}

// expire applies the lifetimes: a soft limit reports once, a hard limit
// deletes the SA and reports it.
func (dp *Dataplane) expire(now time.Time) {
	type hit struct {
		st     *saState
		hard   bool
		reason string
		idle   bool
		last   int64
	}
	var hits []hit
	d := dp.sad
	d.mu.Lock()
	for _, m := range []map[uint32]*saState{d.inState, d.outState} {
		for _, st := range m {
			s := st.stats()
			l := st.Lifetime
			age := now.Sub(st.added)
			pk, by := s.Packets.Load(), s.Bytes.Load()
			switch {
			case l.HardAdd > 0 && age >= l.HardAdd:
				hits = append(hits, hit{st: st, hard: true, reason: "time"})
			case l.HardBytes > 0 && by >= l.HardBytes:
				hits = append(hits, hit{st: st, hard: true, reason: "bytes"})
			case l.HardPackets > 0 && pk >= l.HardPackets:
				hits = append(hits, hit{st: st, hard: true, reason: "packets"})
			case st.out != nil && st.out.Exhausted():
				hits = append(hits, hit{st: st, hard: true, reason: "seq"})
			case st.softSent:
			case l.SoftAdd > 0 && age >= l.SoftAdd:
				hits = append(hits, hit{st: st, reason: "time"})
			case l.SoftBytes > 0 && by >= l.SoftBytes:
				hits = append(hits, hit{st: st, reason: "bytes"})
			case l.SoftPackets > 0 && pk >= l.SoftPackets:
				hits = append(hits, hit{st: st, reason: "packets"})
			case st.out != nil && st.out.NeedsRekey():
				hits = append(hits, hit{st: st, reason: "seq"})
			}
			if len(hits) > 0 && hits[len(hits)-1].st == st && hits[len(hits)-1].hard {
				continue // deleted below
			}
			if l.Idle > 0 {
				last := s.LastUse.Load()
				since := st.added
				if last != 0 {
					since = time.Unix(0, last)
				}
				if now.Sub(since) >= l.Idle && st.idleFor != last {
					hits = append(hits, hit{st: st, reason: "idle", idle: true, last: last})
				}
			}
		}
	}
	for _, h := range hits {
		switch {
		case h.idle:
			h.st.idleFor = h.last
		case !h.hard:
			h.st.softSent = true
		}
	}
	d.mu.Unlock()
	for _, h := range hits {
		ev := Event{Kind: EventSoftExpire, SPI: h.st.SPI, Inbound: h.st.Inbound, ReqID: h.st.ReqID, Reason: h.reason}
		switch {
		case h.hard:
			ev.Kind = EventHardExpire
			if err := d.del(h.st.SPI, h.st.Inbound); err != nil {
				continue // deleted meanwhile by the control plane
			}
		case h.idle:
			ev.Kind = EventIdle
			if h.last != 0 {
				ev.LastUse = time.Unix(0, h.last)
			}
		}
		dp.emit(ev)
	}
}
