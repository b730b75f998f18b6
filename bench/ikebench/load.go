package main

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/espx/espx/control"
	"github.com/espx/espx/internal/netnstest"
)

// load is the initiators of one measurement: a daemon and transport per
// address, each with -inflight workers that set up IKE SAs one after the
// other.
type load struct {
	daemons    []*control.Daemon
	transports []*control.UDPTransport
	inst       countInstaller
	stopped    atomic.Bool
	failed     atomic.Uint64 // IKE SAs that failed while the load ran
	lastErr    atomic.Pointer[error]
}

// initRetransmit is the initiators' schedule: strongSwan's default waits
// (4 s, then 1.8 times longer each), two retransmissions. A request the
// responder never answered shows up in the retransmission count.
var initRetransmit = control.Retransmit{Tries: 2, Timeout: 4 * time.Second, Base: 1.8}

// startLoad creates the initiators in the initiator namespace and starts
// them.
func (b *bench) startLoad() (*load, error) {
	ike, err := control.ParseProposals(control.ProtoIKE, ikeProposal)
	if err != nil {
		return nil, err
	}
	esp, err := control.ParseProposals(control.ProtoESP, espProposal)
	if err != nil {
		return nil, err
	}
	l := &load{}
	ns := &netnstest.NS{Name: b.tp.init}
	resp := netip.AddrPortFrom(netip.MustParseAddr(respAddr), 500)
	for i := range b.opt.initiators {
		a := initiatorAddr(i)
		var tr *control.UDPTransport
		if err := ns.Do(func() (err error) {
			tr, err = control.ListenUDP([]netip.Addr{a})
			return err
		}); err != nil {
			l.close()
			return nil, err
		}
		l.transports = append(l.transports, tr)
		cfg := &control.PeerConfig{
			Name:  "responder",
			Local: netip.AddrPortFrom(a, 500), Remote: resp,
			LocalID: initiatorID, RemoteID: responderID,
			PSK: b.psk, IKE: ike, ESP: esp,
			LocalTS:    []control.TrafficSelector{control.SelectorFromPrefix(initiatorTS(i))},
			RemoteTS:   []control.TrafficSelector{control.SelectorFromPrefix(netip.MustParsePrefix(protNet))},
			Retransmit: initRetransmit,
		}
		d, err := control.NewDaemon(tr, &l.inst, []*control.PeerConfig{cfg}, slog.New(slog.DiscardHandler))
		if err != nil {
			l.close()
			return nil, err
		}
		tr.Serve(d)
		l.daemons = append(l.daemons, d)
	}
	for _, d := range l.daemons {
		for range b.opt.inflight {
			go l.work(d)
		}
	}
	return l, nil
}

// work sets up IKE SAs with the responder, one at a time, until the load
// stops. Established SAs are kept: the responder does set-up work only.
func (l *load) work(d *control.Daemon) {
	for !l.stopped.Load() {
		sa, err := d.Initiate("responder")
		if err == nil {
			err = sa.Wait()
		}
		if err != nil && !l.stopped.Load() {
			l.failed.Add(1)
			l.lastErr.Store(&err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// tunnels counts child SAs the initiators installed.
func (l *load) tunnels() uint64 { return l.inst.tunnels.Load() }

func (l *load) retransmits() uint64 {
	var n uint64
	for _, d := range l.daemons {
		n += d.Stats.Retransmits.Load()
	}
	return n
}

// err is the last failure, if any.
func (l *load) err() error {
	if e := l.lastErr.Load(); e != nil {
		return *e
	}
	return nil
}

// close stops the workers and closes the sockets. Workers waiting on an
// IKE SA end when it times out; nothing of theirs reaches the next
// measurement's responder, whose sockets are new.
func (l *load) close() {
	l.stopped.Store(true)
	for _, tr := range l.transports {
		tr.Close()
	}
}

// countInstaller is the initiators' installer: it hands out SPIs and counts
// child SAs, and does nothing else, to leave the CPU to the responder.
type countInstaller struct {
	spi     atomic.Uint32
	tunnels atomic.Uint64
}

func (c *countInstaller) AllocSPI() (uint32, error) { return c.spi.Add(1) + 0x1000, nil }

func (c *countInstaller) AddSA(sa *control.ChildSA) error {
	if !sa.Inbound {
		c.tunnels.Add(1)
	}
	return nil
}

func (c *countInstaller) DeleteSA(spi uint32, inbound bool) error { return nil }

var errNoProgress = errors.New("no tunnel came up")
