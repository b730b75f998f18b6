package control

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Conn sends IKE datagrams. The daemon's owner reads datagrams from the
// sockets and hands them to Daemon.Receive.
type Conn interface {
	Send(b []byte, from, to netip.AddrPort) error
}

// Stats count what the daemon dropped, by reason.
type Stats struct {
	Malformed          atomic.Uint64 // failed to decode
	UnknownSA          atomic.Uint64 // no IKE SA for the SPI
	AuthFailed         atomic.Uint64 // SK integrity or AUTH payload failed
	Retransmitted      atomic.Uint64 // responses resent for retransmitted requests
	OutOfOrder         atomic.Uint64 // message IDs not expected
	NoPeerConfig       atomic.Uint64 // IKE_SA_INIT from an unknown peer
	NotIKE             atomic.Uint64 // on port 4500 without the non-ESP marker
	NoProposal         atomic.Uint64 // NO_PROPOSAL_CHOSEN sent
	InvalidKE          atomic.Uint64 // INVALID_KE_PAYLOAD sent
	TSUnacceptable     atomic.Uint64 // TS_UNACCEPTABLE sent
	Retransmits        atomic.Uint64 // our requests sent again
	InitDropped        atomic.Uint64 // IKE_SA_INIT requests refused by a limit
	CookiesSent        atomic.Uint64 // IKE_SA_INIT requests answered with a cookie
	BadCookie          atomic.Uint64 // cookies that did not verify
	HalfOpenExpired    atomic.Uint64 // responder IKE SAs that never completed
	IKERekeyCollisions atomic.Uint64 // IKE SA rekeys both ends started at once
	Keepalives         atomic.Uint64 // NAT keepalives sent

	// What happened to IKE and child SAs.
	Established atomic.Uint64 // IKE SAs established by IKE_AUTH, either role
	Failed      atomic.Uint64 // IKE SAs that failed before they were established
	IKERekeys   atomic.Uint64 // IKE SAs replaced by a rekey, by either end
	ChildSAs    atomic.Uint64 // child SAs installed (new and rekeyed)
	DeadPeers   atomic.Uint64 // established IKE SAs closed because the peer stopped answering
}

// Daemon runs the IKE SAs of one gateway.
type Daemon struct {
	conn  Conn
	inst  Installer
	peers []*PeerConfig
	log   *slog.Logger
	clock Clock
	Stats Stats

	limits  Limits
	cookies cookieSecrets
	// onPeerClose is told when the peer closes a tunnel; set before the
	// daemon runs.
	onPeerClose func(name string)
	// logKeys logs IKE SA keys at debug level (keylog.go).
	logKeys bool

	// sas are the IKE SAs by our SPI, in a segmented table with locks of
	// its own.
	sas saTable

	// mu guards the tables below; each IKE SA has its own lock for
	// everything else. Lock order: an IKE SA's mu, then the daemon's.
	mu sync.Mutex
	// byInit finds responder IKE SAs by the initiator's SPI and address,
	// for retransmitted IKE_SA_INIT requests.
	byInit     map[halfOpenKey]*IKESA
	halfOpen   int
	halfOpenBy map[netip.Addr]int
}

// SetLimits sets the denial-of-service limits; zero fields take the
// defaults.
func (d *Daemon) SetLimits(l Limits) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.limits = l.withDefaults()
}

// NewDaemon checks the peer configurations and returns a daemon for them.
func NewDaemon(conn Conn, inst Installer, peers []*PeerConfig, log *slog.Logger) (*Daemon, error) {
	for _, p := range peers {
		if p.Retransmit == (Retransmit{}) {
			p.Retransmit = DefaultRetransmit
		}
		if err := p.Check(); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Daemon{conn: conn, inst: inst, peers: peers, log: log, clock: realClock{}, limits: DefaultLimits,
		byInit: map[halfOpenKey]*IKESA{}, halfOpenBy: map[netip.Addr]int{}}, nil
}

// ErrNoPeer: Initiate names no configured peer.
var ErrNoPeer = errors.New("no such peer")

// Initiate starts an IKE SA with the named peer and returns it; Wait on it
// for the result.
func (d *Daemon) Initiate(name string) (*IKESA, error) {
	var cfg *PeerConfig
	for _, p := range d.peers {
		if p.Name == name {
			cfg = p
		}
	}
	if cfg == nil {
		return nil, fmt.Errorf("%w %q", ErrNoPeer, name)
	}
	sa := d.newSA(cfg, true, newSPI(), 0)
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if err := sa.startInit(); err != nil {
		sa.fail(err)
		return sa, err
	}
	return sa, nil
}

func (d *Daemon) newSA(cfg *PeerConfig, initiator bool, spiI, spiR uint64) *IKESA {
	sa := &IKESA{d: d, cfg: cfg, initiator: initiator, spiI: spiI, spiR: spiR, local: cfg.Local, remote: cfg.Remote, done: make(chan struct{})}
	d.sas.put(sa.ourSPI(), sa)
	return sa
}

// remove forgets an IKE SA.
func (d *Daemon) remove(sa *IKESA) {
	d.sas.remove(sa.ourSPI(), sa)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.leaveInit(sa)
}

// leaveInit takes a responder IKE SA out of the half-open tables; d.mu is
// held.
func (d *Daemon) leaveInit(sa *IKESA) {
	k := halfOpenKey{sa.spiI, sa.remote.Addr()}
	if d.byInit[k] == sa {
		delete(d.byInit, k)
	}
	d.setHalfOpen(sa, false)
}

func (d *Daemon) lookup(spi uint64) *IKESA { return d.sas.get(spi) }

// peerFor finds the configuration of the peer an IKE_SA_INIT request
// comes from: of those for its addresses, the first that accepts one of
// the IKE proposals offered, or failing that the first (which will refuse
// them). IKE_AUTH may move the IKE SA to another configuration for the
// same addresses, by the peer's identity; each child SA gets the
// configuration its selectors fit (childConfigs).
func (d *Daemon) peerFor(from, to netip.AddrPort, offered []Proposal) *PeerConfig {
	var first *PeerConfig
	for _, p := range d.peers {
		if p.Remote.Addr() != from.Addr() || p.Local.Addr() != to.Addr() {
			continue
		}
		if first == nil {
			first = p
		}
		if _, ok := SelectProposal(p.IKE, offered); ok {
			return p
		}
	}
	return first
}

// Receive processes one IKE datagram that arrived from from at to. A
// message that cannot be decoded or authenticated is dropped and counted;
// it changes no state.
func (d *Daemon) Receive(b []byte, from, to netip.AddrPort) {
	if to.Port() == PortNATT {
		// RFC 3948 section 2.2: IKE behind the non-ESP marker; ESP and
		// NAT keepalives are not the control plane's.
		if len(b) < nonESPMarkerLen || b[0]|b[1]|b[2]|b[3] != 0 {
			d.Stats.NotIKE.Add(1)
			return
		}
		b = b[nonESPMarkerLen:]
	}
	h, err := DecodeHeader(b)
	if err != nil {
		d.Stats.Malformed.Add(1)
		return
	}
	if h.Exchange == IKE_SA_INIT && !h.IsResponse() && h.SPIr == 0 {
		d.receiveInitRequest(b, h, from, to)
		return
	}
	spi := h.SPIr
	if !h.FromInitiator() {
		spi = h.SPIi
	}
	sa := d.lookup(spi)
	if sa == nil {
		d.Stats.UnknownSA.Add(1)
		return
	}
	sa.mu.Lock()
	defer sa.mu.Unlock()
	sa.receive(b, h, from, to)
}

// receiveInitRequest answers an IKE_SA_INIT request, or resends the answer
// to a retransmitted one.
func (d *Daemon) receiveInitRequest(b []byte, h Header, from, to netip.AddrPort) {
	d.mu.Lock()
	sa := d.byInit[halfOpenKey{h.SPIi, from.Addr()}]
	d.mu.Unlock()
	if sa != nil {
		sa.mu.Lock()
		defer sa.mu.Unlock()
		if sa.lastResp != nil && h.MessageID == 0 && sa.state == stateInitDone {
			d.Stats.Retransmitted.Add(1)
			sa.send(sa.lastResp)
		}
		return
	}
	if d.peerFor(from, to, nil) == nil {
		d.Stats.NoPeerConfig.Add(1)
		return
	}
	m, err := Decode(b)
	if err != nil {
		d.Stats.Malformed.Add(1)
		return
	}
	var offered []Proposal
	for _, pl := range m.Payloads {
		if sa, ok := pl.(*SA); ok {
			offered = sa.Proposals
		}
	}
	cfg := d.peerFor(from, to, offered)
	d.mu.Lock()
	ok, cookie := d.admitInit(m, from)
	d.mu.Unlock()
	if cookie != nil {
		// Section 2.6: prove the address first; no state is kept.
		resp := &Message{Header: Header{SPIi: h.SPIi, Exchange: IKE_SA_INIT, Flags: FlagResponse},
			Payloads: []Payload{&Notify{NotifyType: COOKIE, Data: cookie}}}
		d.conn.Send(resp.Encode(), to, from)
	}
	if ok {
		d.respondInit(cfg, m, b, from, to)
	}
}

func (sa *IKESA) send(b []byte) {
	if sa.local.Port() == PortNATT {
		b = withMarker(b)
	}
	if err := sa.d.conn.Send(b, sa.local, sa.remote); err != nil && !errors.Is(err, net.ErrClosed) {
		// (A transport being closed drops what its handlers still answer.)
		sa.d.log.Warn("send", "peer", sa.cfg.Name, "err", err)
	}
}

// receive handles a message for an existing SA; sa.mu is held.
func (sa *IKESA) receive(b []byte, h Header, from, to netip.AddrPort) {
	if h.IsResponse() {
		if sa.req == nil || h.MessageID != sa.req.id || h.Exchange != sa.req.exchange {
			sa.d.Stats.OutOfOrder.Add(1)
			return
		}
		sa.req.handle(b)
		sa.startNext()
		return
	}
	switch {
	case h.MessageID+1 == sa.peerID && sa.lastResp != nil:
		// A retransmission of the request we last answered.
		sa.d.Stats.Retransmitted.Add(1)
		sa.send(sa.lastResp)
	case h.MessageID != sa.peerID:
		sa.d.Stats.OutOfOrder.Add(1)
	case h.Exchange == IKE_AUTH && sa.state == stateInitDone:
		sa.processAuthRequest(b, from, to)
	case h.Exchange == INFORMATIONAL && sa.state == stateEstablished:
		sa.processInformational(b)
	case h.Exchange == CREATE_CHILD_SA && sa.state == stateEstablished:
		sa.processCreateChild(b)
	default:
		sa.d.Stats.OutOfOrder.Add(1)
	}
}

// open verifies and decrypts the SK payload of b; a failure is counted
// and the message ignored (section 2.21.2: an unauthenticated message
// changes nothing).
func (sa *IKESA) open(b []byte) ([]Payload, bool) {
	m, err := Decode(b)
	if err != nil || m.SK == nil {
		sa.d.Stats.Malformed.Add(1)
		return nil, false
	}
	pt, err := sa.in.Open(append([]byte(nil), b...), m.SK.Offset)
	if err != nil {
		sa.d.Stats.AuthFailed.Add(1)
		return nil, false
	}
	ps, err := DecodePayloads(m.SK.First, pt)
	if err != nil {
		sa.d.Stats.Malformed.Add(1)
		return nil, false
	}
	// An authenticated message is proof that the peer is alive.
	sa.lastHeard = sa.d.clock.Now()
	return ps, true
}
