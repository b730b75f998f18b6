package dataplane

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/espx/espx/spd"
)

// Lifetime limits an SA as XFRM's lifetime configuration does: at a soft
// limit the data plane tells the control plane to rekey, at a hard limit
// it deletes the SA and tells the control plane so. Zero means no limit.
type Lifetime struct {
	SoftBytes, HardBytes     uint64
	SoftPackets, HardPackets uint64
	// SoftAdd and HardAdd count from the SA's installation.
	SoftAdd, HardAdd time.Duration
	// Idle reports an SA that has carried no packet for this long
	// (counting from its installation if it never has): one EventIdle,
	// and another only once it has carried packets and gone idle again.
	// It deletes nothing; the control plane decides.
	Idle time.Duration
}

// SA is one direction of an SA as the installer takes it, the counterpart
// of XFRM's xfrm_usersa_info.
type SA struct {
	SAConfig
	Inbound  bool
	Lifetime Lifetime
}

// SAInfo is what QuerySA reports of an installed SA.
type SAInfo struct {
	SA
	Added   time.Time
	Packets uint64
	Bytes   uint64
	// LastUse is when the SA last carried a packet; zero if never.
	LastUse time.Time
	// Seq is the last sequence number sent (outbound) or the highest
	// received (inbound).
	Seq uint64
	// Inbound only: packets dropped as replays, as left of the window,
	// and for an ICV that did not verify.
	Replay, TooOld, AuthFailed uint64
}

// Installer is the interface between the control plane and the data
// plane, in the shape of the kernel's XFRM netlink interface: the IKE
// daemon and the static configuration both drive the data plane through
// it, and tests drive the IKE daemon against a fake.
type Installer interface {
	// AllocSPI reserves an unused inbound SPI for an SA being negotiated
	// (XFRM_MSG_ALLOCSPI). It stays reserved until an SA takes it or
	// DeleteSA releases it.
	AllocSPI() (uint32, error)
	// AddSA installs one direction of an SA (XFRM_MSG_NEWSA). An inbound
	// SA is found by SPI; an outbound one by its ReqID, and the most
	// recently added outbound SA of a ReqID is the one packets take, which
	// makes a rekey's switch-over one call.
	AddSA(sa SA) error
	// UpdateSA replaces an installed SA with new parameters, keeping its
	// counters, sequence numbers and replay state only where the keys are
	// unchanged (XFRM_MSG_UPDSA); used for a NAT-T port change.
	UpdateSA(sa SA) error
	// QuerySA reports an installed SA's counters (XFRM_MSG_GETSA).
	QuerySA(spi uint32, inbound bool) (SAInfo, error)
	// DeleteSA removes one direction of an SA (XFRM_MSG_DELSA).
	DeleteSA(spi uint32, inbound bool) error
	// AddPolicy installs a policy (XFRM_MSG_NEWPOLICY).
	AddPolicy(p spd.Policy) (spd.ID, error)
	// DeletePolicy removes a policy (XFRM_MSG_DELPOLICY).
	DeletePolicy(id spd.ID) error
}

// Errors of the installer.
var (
	ErrNoSA     = errors.New("no such SA")
	ErrSAExists = errors.New("SA exists")
)

// saState is the control side's record of an installed SA.
type saState struct {
	SA
	added    time.Time
	in       *InboundSA
	out      *OutboundSA
	softSent bool
	// idleFor is the last use (Unix ns, 0 for never) that EventIdle was
	// reported for, -1 if none was.
	idleFor int64
}

// sad is the security association database: inbound SAs by SPI and
// outbound SAs by request ID for the workers, read without locks, and the
// records behind them for the installer, under mu.
type sad struct {
	in  table[InboundSA]
	out table[OutboundSA]

	mu       sync.Mutex
	inState  map[uint32]*saState
	outState map[uint32]*saState
	// byReq lists the outbound SAs of each request ID, oldest first; the
	// last one is the one in out.
	byReq    map[uint64][]*saState
	reserved map[uint32]time.Time
}

func newSAD() *sad {
	return &sad{
		inState:  make(map[uint32]*saState),
		outState: make(map[uint32]*saState),
		byReq:    make(map[uint64][]*saState),
		reserved: make(map[uint32]time.Time),
	}
}

// spiReserveTime bounds how long an allocated SPI waits for its SA, as
// XFRM's larval SAs do: a negotiation that never finishes frees it.
const spiReserveTime = 5 * time.Minute

func (d *sad) allocSPI(now time.Time) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for spi, t := range d.reserved {
		if now.Sub(t) > spiReserveTime {
			delete(d.reserved, spi)
		}
	}
	var b [4]byte
	for range 64 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		spi := binary.BigEndian.Uint32(b[:])
		if spi < 256 {
			continue
		}
		if _, used := d.inState[spi]; used {
			continue
		}
		if _, used := d.reserved[spi]; used {
			continue
		}
		d.reserved[spi] = now
		return spi, nil
	}
	return 0, errors.New("no free SPI found")
}

func (d *sad) add(sa SA, now time.Time, replace bool) error {
	st := &saState{SA: sa, added: now, idleFor: -1}
	var err error
	if sa.Inbound {
		if st.in, err = NewInboundSA(sa.SAConfig); err != nil {
			return err
		}
	} else if st.out, err = NewOutboundSA(sa.SAConfig); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	states := d.outState
	if sa.Inbound {
		states = d.inState
	}
	old, exists := states[sa.SPI]
	switch {
	case exists && !replace:
		return fmt.Errorf("%w: spi %#08x", ErrSAExists, sa.SPI)
	case !exists && replace:
		return fmt.Errorf("%w: spi %#08x", ErrNoSA, sa.SPI)
	}
	if exists {
		// An update keeps what the SA has done: counters, and where the
		// keys are the same its sequence numbers and replay state.
		st.added = old.added
		st.softSent = old.softSent
		st.idleFor = old.idleFor
		if sa.Inbound {
			st.in.Stats.Packets.Store(old.in.Stats.Packets.Load())
			st.in.Stats.Bytes.Store(old.in.Stats.Bytes.Load())
			st.in.Stats.LastUse.Store(old.in.Stats.LastUse.Load())
			st.in.Stats.Replay.Store(old.in.Stats.Replay.Load())
			st.in.Stats.TooOld.Store(old.in.Stats.TooOld.Load())
			st.in.Stats.AuthFailed.Store(old.in.Stats.AuthFailed.Load())
			if old.Transform.Equal(sa.Transform) && old.ESN == sa.ESN && old.ReplayWindow == sa.ReplayWindow {
				st.in.window = old.in.window
			}
		} else {
			st.out.Stats.Packets.Store(old.out.Stats.Packets.Load())
			st.out.Stats.Bytes.Store(old.out.Stats.Bytes.Load())
			st.out.Stats.LastUse.Store(old.out.Stats.LastUse.Load())
			if old.Transform.Equal(sa.Transform) {
				st.out.seq.Store(max(old.out.seq.Load(), st.out.seq.Load()))
			}
		}
	}
	states[sa.SPI] = st
	if sa.Inbound {
		delete(d.reserved, sa.SPI)
		d.in.mu.Lock()
		d.in.put(uint64(sa.SPI), st.in)
		d.in.mu.Unlock()
		return nil
	}
	l := d.byReq[sa.ReqID]
	if exists {
		for i, s := range l {
			if s == old {
				l[i] = st
			}
		}
	} else {
		l = append(l, st)
	}
	d.byReq[sa.ReqID] = l
	if old != nil && old.ReqID != sa.ReqID {
		d.unlistLocked(old)
	}
	d.publishReqLocked(sa.ReqID)
	return nil
}

// publishReqLocked points the workers at the newest outbound SA of reqid,
// or at none.
func (d *sad) publishReqLocked(reqid uint64) {
	l := d.byReq[reqid]
	d.out.mu.Lock()
	if len(l) == 0 {
		delete(d.byReq, reqid)
		d.out.del(reqid)
	} else {
		d.out.put(reqid, l[len(l)-1].out)
	}
	d.out.mu.Unlock()
}

func (d *sad) unlistLocked(st *saState) {
	l := d.byReq[st.ReqID]
	for i, s := range l {
		if s == st {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	d.byReq[st.ReqID] = l
	d.publishReqLocked(st.ReqID)
}

func (d *sad) del(spi uint32, inbound bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if inbound {
		if _, ok := d.reserved[spi]; ok {
			delete(d.reserved, spi)
			return nil
		}
		if _, ok := d.inState[spi]; !ok {
			return fmt.Errorf("%w: in spi %#08x", ErrNoSA, spi)
		}
		delete(d.inState, spi)
		d.in.mu.Lock()
		d.in.del(uint64(spi))
		d.in.mu.Unlock()
		return nil
	}
	st, ok := d.outState[spi]
	if !ok {
		return fmt.Errorf("%w: out spi %#08x", ErrNoSA, spi)
	}
	delete(d.outState, spi)
	d.unlistLocked(st)
	return nil
}

func (d *sad) query(spi uint32, inbound bool) (SAInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	states := d.outState
	if inbound {
		states = d.inState
	}
	st, ok := states[spi]
	if !ok {
		return SAInfo{}, fmt.Errorf("%w: spi %#08x", ErrNoSA, spi)
	}
	return st.info(), nil
}

func (st *saState) stats() *SAStats {
	if st.in != nil {
		return &st.in.Stats
	}
	return &st.out.Stats
}

func (st *saState) info() SAInfo {
	s := st.stats()
	i := SAInfo{SA: st.SA, Added: st.added, Packets: s.Packets.Load(), Bytes: s.Bytes.Load(),
		Replay: s.Replay.Load(), TooOld: s.TooOld.Load(), AuthFailed: s.AuthFailed.Load()}
	if t := s.LastUse.Load(); t != 0 {
		i.LastUse = time.Unix(0, t)
	}
	if st.in != nil {
		i.Seq = st.in.window.Top()
	} else {
		i.Seq = st.out.Seq()
	}
	return i
}

// list returns every installed SA, inbound first, each in SPI order.
func (d *sad) list() []SAInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]SAInfo, 0, len(d.inState)+len(d.outState))
	for _, m := range []map[uint32]*saState{d.inState, d.outState} {
		start := len(out)
		for _, st := range m {
			out = append(out, st.info())
		}
		sortBySPI(out[start:])
	}
	return out
}
