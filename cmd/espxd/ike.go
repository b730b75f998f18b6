package main

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/espx/espx/control"
	"github.com/espx/espx/control/api"
	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/spd"
)

// connConfig is an IKEv2 connection: a peer and the child SA negotiated
// with it, in the spirit of a swanctl.conf connection.
type connConfig struct {
	Name        string   `toml:"name"`
	Local       string   `toml:"local"`  // this gateway's IKE address
	Remote      string   `toml:"remote"` // the peer's
	LocalID     string   `toml:"local-id"`
	RemoteID    string   `toml:"remote-id"`
	PSK         string   `toml:"psk"`
	PSKFile     string   `toml:"psk-file"`
	IKE         string   `toml:"ike"` // e.g. aes128gcm16-prfsha256-x25519
	ESP         string   `toml:"esp"` // e.g. aes128gcm16
	LocalTS     []string `toml:"local-ts"`
	RemoteTS    []string `toml:"remote-ts"`
	StartAction string   `toml:"start-action"` // none, trap (default), start
	ReqID       uint64   `toml:"reqid"`
	Priority    uint32   `toml:"priority"`
	Encap       bool     `toml:"encap"` // force UDP encapsulation
	// Keepalive is the NAT keepalive interval when this end is behind a
	// NAT (default 20s; "-1s" turns them off).
	Keepalive duration `toml:"keepalive"`
	// Childless brings the IKE SA up alone (RFC 6023, when the peer
	// supports it) and the child SA with CREATE_CHILD_SA after it.
	Childless bool `toml:"childless"`
	// Child SA lifetimes, as swanctl.conf's: rekey after rekey-time less
	// a random part of rand-time, delete at life-time; and after so many
	// bytes or packets. Defaults 1h, rekey-time * 1.1, life - rekey, off.
	RekeyTime duration `toml:"rekey-time"`
	// IKERekeyTime rekeys the IKE SA (default 4h, less up to a tenth at
	// random); its child SAs carry on in the new one.
	IKERekeyTime duration  `toml:"ike-rekey-time"`
	LifeTime     duration  `toml:"life-time"`
	RandTime     *duration `toml:"rand-time"`
	RekeyBytes   uint64    `toml:"rekey-bytes"`
	RekeyPackets uint64    `toml:"rekey-packets"`
	// Inactivity closes the tunnel (IKE SA and child SA) after this long
	// without a packet either way; the trap policy stays and the next
	// packet brings it back. Default 15m; "0s" keeps tunnels up.
	Inactivity *duration `toml:"inactivity"`
	// IdleKeepIKE closes only the child SA of an idle tunnel and keeps
	// the IKE SA, so that the next packet needs just a CREATE_CHILD_SA.
	IdleKeepIKE bool `toml:"idle-keep-ike"`
	// Dead peer detection: after dpd-delay without an authenticated IKE
	// message or an ESP packet from the peer, a liveness check goes out;
	// if the peer answers none of its retransmissions, the IKE SA goes and
	// dpd-action says what then: restart (negotiate again, the default),
	// trap (wait for traffic) or clear (nothing). 0 turns it off.
	DPDDelay  duration `toml:"dpd-delay"`
	DPDAction string   `toml:"dpd-action"`
	// ReauthTime reauthenticates the connection (a new IKE SA from
	// IKE_SA_INIT on, replacing the old one) this often; 0, the default,
	// never. MakeBeforeBreak (default true) brings the new SAs up before
	// the old ones go; false deletes first, as some peers need.
	ReauthTime      duration `toml:"reauth-time"`
	MakeBeforeBreak *bool    `toml:"make-before-break"`
	// CloseAction is what happens when the peer closes the tunnel: none
	// (the default), trap (wait for traffic) or start (negotiate again).
	CloseAction string `toml:"close-action"`
	// The retransmission schedule, strongSwan's charon.retransmit_*.
	RetransmitTries   *int     `toml:"retransmit-tries"`
	RetransmitTimeout duration `toml:"retransmit-timeout"`
	RetransmitBase    float64  `toml:"retransmit-base"`
	RetransmitJitter  int      `toml:"retransmit-jitter"`
	RetransmitLimit   duration `toml:"retransmit-limit"`
}

// connection is a checked connConfig.
type connection struct {
	peer       *control.PeerConfig
	reqid      uint64
	start      string
	priority   uint32
	local      []netip.Prefix
	remote     []netip.Prefix
	rekey      time.Duration
	life       time.Duration
	rand       time.Duration
	rekeyBytes uint64
	rekeyPkts  uint64
	inactivity time.Duration
	keepIKE    bool
	dpd        time.Duration
	dpdAction  string
	closeAct   string
	reauth     time.Duration
	mbb        bool
	ikeRekey   time.Duration
}

// lifetime is the data plane lifetime of a new child SA of c: a soft
// limit that makes the data plane ask for a rekey, jittered so that many
// tunnels do not rekey at once, and a hard one.
func (c *connection) lifetime() dataplane.Lifetime {
	soft := c.rekey
	if c.rand > 0 {
		soft -= time.Duration(mrand.Int64N(int64(c.rand) + 1))
	}
	l := dataplane.Lifetime{SoftAdd: soft, HardAdd: c.life, SoftPackets: c.rekeyPkts, SoftBytes: c.rekeyBytes}
	if c.rekeyBytes > 0 {
		l.HardBytes = c.rekeyBytes + c.rekeyBytes/10
	}
	if c.rekeyPkts > 0 {
		l.HardPackets = c.rekeyPkts + c.rekeyPkts/10
	}
	return l
}

// identity parses an identity the way swanctl.conf writes them: an IP
// address, an email address (with @ inside), a key ID (@#hex), or else an
// FQDN (a leading @ is dropped).
func identity(s string, fallback netip.Addr) (*control.ID, error) {
	switch {
	case s == "":
		return ipID(fallback), nil
	case strings.HasPrefix(s, "@#"):
		b, err := hexKey("key id", s[2:])
		if err != nil {
			return nil, err
		}
		return &control.ID{IDType: control.IDKeyID, Data: b}, nil
	case strings.HasPrefix(s, "@"):
		return &control.ID{IDType: control.IDFQDN, Data: []byte(s[1:])}, nil
	case strings.Contains(s, "@"):
		return &control.ID{IDType: control.IDRFC822, Data: []byte(s)}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return ipID(a), nil
	}
	return &control.ID{IDType: control.IDFQDN, Data: []byte(s)}, nil
}

func ipID(a netip.Addr) *control.ID {
	if a.Is4() {
		b := a.As4()
		return &control.ID{IDType: control.IDIPv4, Data: b[:]}
	}
	b := a.As16()
	return &control.ID{IDType: control.IDIPv6, Data: b[:]}
}

func (c *connConfig) convert(i int) (*connection, error) {
	if c.Name == "" {
		return nil, ferr("name", "missing")
	}
	local, err := netip.ParseAddr(c.Local)
	if err != nil {
		return nil, ferr("local", "%v", err)
	}
	remote, err := netip.ParseAddr(c.Remote)
	if err != nil {
		return nil, ferr("remote", "%v", err)
	}
	p := &control.PeerConfig{
		Name:       c.Name,
		Local:      netip.AddrPortFrom(local, 500),
		Remote:     netip.AddrPortFrom(remote, 500),
		ForceEncap: c.Encap,
		Childless:  c.Childless,
		Keepalive:  c.Keepalive.Duration,
		Retransmit: control.DefaultRetransmit,
	}
	if p.LocalID, err = identity(c.LocalID, local); err != nil {
		return nil, ferr("local-id", "%v", err)
	}
	if p.RemoteID, err = identity(c.RemoteID, remote); err != nil {
		return nil, ferr("remote-id", "%v", err)
	}
	psk := c.PSK
	if c.PSKFile != "" {
		b, err := os.ReadFile(c.PSKFile)
		if err != nil {
			return nil, ferr("psk-file", "%v", err)
		}
		psk = strings.TrimRight(string(b), "\r\n")
	}
	if len(psk) < 16 {
		// Never print the key, not even its length's neighbourhood.
		return nil, ferr("psk", "missing or shorter than 16 bytes")
	}
	p.PSK = []byte(psk)
	ike, esp := c.IKE, c.ESP
	if ike == "" {
		ike = "aes128gcm16-prfsha256-x25519"
	}
	if esp == "" {
		esp = "aes128gcm16"
	}
	if p.IKE, err = control.ParseProposals(control.ProtoIKE, ike); err != nil {
		return nil, ferr("ike", "%v", err)
	}
	if p.ESP, err = control.ParseProposals(control.ProtoESP, esp); err != nil {
		return nil, ferr("esp", "%v", err)
	}
	conn := &connection{peer: p, reqid: c.ReqID, start: c.StartAction, priority: c.Priority}
	if conn.reqid == 0 {
		conn.reqid = uint64(1000 + i)
	}
	if conn.priority == 0 {
		conn.priority = 1000
	}
	switch conn.start {
	case "":
		conn.start = "trap"
	case "none", "trap", "start":
	default:
		return nil, ferr("start-action", "%q: want none, trap or start", c.StartAction)
	}
	for _, ts := range []struct {
		name string
		in   []string
		out  *[]netip.Prefix
		sel  *[]control.TrafficSelector
	}{
		{"local-ts", c.LocalTS, &conn.local, &p.LocalTS},
		{"remote-ts", c.RemoteTS, &conn.remote, &p.RemoteTS},
	} {
		if len(ts.in) == 0 {
			return nil, ferr(ts.name, "missing")
		}
		for _, s := range ts.in {
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, ferr(ts.name, "%v", err)
			}
			*ts.out = append(*ts.out, pfx.Masked())
			*ts.sel = append(*ts.sel, control.SelectorFromPrefix(pfx.Masked()))
		}
	}
	conn.rekey = c.RekeyTime.Duration
	if conn.rekey == 0 {
		conn.rekey = time.Hour
	}
	conn.life = c.LifeTime.Duration
	if conn.life == 0 {
		conn.life = conn.rekey + conn.rekey/10
	}
	if conn.life <= conn.rekey {
		return nil, ferr("life-time", "%v must be longer than rekey-time %v", conn.life, conn.rekey)
	}
	conn.rand = conn.life - conn.rekey
	if c.RandTime != nil {
		conn.rand = c.RandTime.Duration
	}
	if conn.rand < 0 || conn.rand >= conn.rekey {
		return nil, ferr("rand-time", "%v: want 0 up to less than rekey-time", conn.rand)
	}
	conn.rekeyBytes, conn.rekeyPkts = c.RekeyBytes, c.RekeyPackets
	conn.ikeRekey = c.IKERekeyTime.Duration
	if conn.ikeRekey == 0 {
		conn.ikeRekey = 4 * time.Hour
	}
	conn.dpd, conn.dpdAction = c.DPDDelay.Duration, c.DPDAction
	conn.keepIKE = c.IdleKeepIKE
	switch conn.dpdAction {
	case "":
		conn.dpdAction = "restart"
	case "restart", "trap", "clear":
	default:
		return nil, ferr("dpd-action", "%q: want restart, trap or clear", c.DPDAction)
	}
	conn.reauth, conn.mbb = c.ReauthTime.Duration, true
	if c.MakeBeforeBreak != nil {
		conn.mbb = *c.MakeBeforeBreak
	}
	conn.closeAct = c.CloseAction
	switch conn.closeAct {
	case "":
		conn.closeAct = "none"
	case "none", "trap", "start":
	default:
		return nil, ferr("close-action", "%q: want none, trap or start", c.CloseAction)
	}
	if c.RetransmitTries != nil {
		p.Retransmit.Tries = *c.RetransmitTries
	}
	if c.RetransmitTimeout.Duration != 0 {
		p.Retransmit.Timeout = c.RetransmitTimeout.Duration
	}
	if c.RetransmitBase != 0 {
		p.Retransmit.Base = c.RetransmitBase
	}
	p.Retransmit.Jitter, p.Retransmit.Limit = c.RetransmitJitter, c.RetransmitLimit.Duration
	conn.inactivity = 15 * time.Minute
	if c.Inactivity != nil {
		conn.inactivity = c.Inactivity.Duration
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return conn, nil
}

// trap reports whether the connection's outbound policies are traps: when
// it starts on demand, or waits for traffic after the peer closes the
// tunnel or dies. Without an SA a trap raises an acquire; a plain protect
// policy drops.
func (c *connection) trap() bool {
	return c.start == "trap" || c.closeAct == "trap" || c.dpdAction == "trap"
}

// policies are the connection's policies: for every pair of local and
// remote selectors of one family, an outbound policy (a trap when the
// tunnel starts on demand) and a forward policy that decrypted packets
// must match.
func (c *connection) policies() []spd.Policy {
	var ps []spd.Policy
	for _, l := range c.local {
		for _, r := range c.remote {
			if l.Addr().Is4() != r.Addr().Is4() {
				continue
			}
			sel := spd.Selector{Local: l, Remote: r}
			ps = append(ps,
				spd.Policy{Dir: spd.DirOut, Selector: sel, Priority: c.priority, Action: spd.Protect, SA: c.reqid, Trap: c.trap()},
				spd.Policy{Dir: spd.DirFwd, Selector: sel, Priority: c.priority, Action: spd.Protect, SA: c.reqid})
		}
	}
	return ps
}

// ikeInstaller puts the child SAs the IKE daemon negotiates into the data
// plane, tied by request ID to the policies of their connection.
type ikeInstaller struct {
	dp    *dataplane.Dataplane
	conns []*connection
	log   *slog.Logger

	// drawn holds, by request ID, the lifetime drawn for a child SA's
	// inbound SA until its outbound SA, installed right after, takes it.
	mu    sync.Mutex
	drawn map[uint64]dataplane.Lifetime
}

// lifetime is the lifetime of a new SA of conn. The two SAs of a child SA
// share one random draw, so that the pair rekeys as one; the inbound SA's
// soft limit comes a second later, so that the rekey started by the
// outbound SA's is the one that happens.
func (in *ikeInstaller) lifetime(conn *connection, inbound bool) dataplane.Lifetime {
	in.mu.Lock()
	defer in.mu.Unlock()
	if inbound {
		l := conn.lifetime()
		if in.drawn == nil {
			in.drawn = map[uint64]dataplane.Lifetime{}
		}
		in.drawn[conn.reqid] = l
		l.SoftAdd += time.Second
		return l
	}
	l, ok := in.drawn[conn.reqid]
	if !ok {
		l = conn.lifetime()
	}
	delete(in.drawn, conn.reqid)
	return l
}

// conn finds the connection a child SA belongs to: the peer's address,
// and selectors inside the connection's, as several connections to one
// peer differ by their selectors.
func (in *ikeInstaller) conn(c *control.ChildSA) (*connection, error) {
	for _, cc := range in.conns {
		// The control plane says which connection it negotiated under.
		if cc.peer.Name == c.Conn && control.Within(c.LocalTS, cc.peer.LocalTS) && control.Within(c.RemoteTS, cc.peer.RemoteTS) {
			return cc, nil
		}
	}
	for _, cc := range in.conns {
		if cc.peer.Remote.Addr() == c.Remote.Addr() &&
			control.Within(c.LocalTS, cc.peer.LocalTS) && control.Within(c.RemoteTS, cc.peer.RemoteTS) {
			return cc, nil
		}
	}
	return nil, fmt.Errorf("no connection with peer %v for %v === %v", c.Remote.Addr(), c.LocalTS, c.RemoteTS)
}

func (in *ikeInstaller) AllocSPI() (uint32, error) { return in.dp.AllocSPI() }

func (in *ikeInstaller) AddSA(c *control.ChildSA) error {
	conn, err := in.conn(c)
	if err != nil {
		return err
	}
	reqid := conn.reqid
	sa := dataplane.SA{Inbound: c.Inbound, Lifetime: in.lifetime(conn, c.Inbound), SAConfig: dataplane.SAConfig{
		SPI: c.SPI, ReqID: reqid, Transform: c.Transform, ESN: c.ESN, Mode: dataplane.ModeTunnel,
		Encap: c.Encap, ReplayWindow: c.ReplayWindow,
	}}
	if c.Inbound {
		sa.Src, sa.Dst = c.Remote.Addr(), c.Local.Addr()
		sa.SrcPort, sa.DstPort = c.Remote.Port(), c.Local.Port()
	} else {
		sa.Src, sa.Dst = c.Local.Addr(), c.Remote.Addr()
		sa.SrcPort, sa.DstPort = c.Local.Port(), c.Remote.Port()
	}
	if err := in.dp.AddSA(sa); err != nil {
		return err
	}
	in.log.Info("child SA installed", "spi", fmt.Sprintf("%#08x", c.SPI), "inbound", c.Inbound, "reqid", reqid, "encap", c.Encap)
	return nil
}

func (in *ikeInstaller) DeleteSA(spi uint32, inbound bool) error {
	return in.dp.DeleteSA(spi, inbound)
}

// ike runs the IKE daemon for the configured connections: it listens on
// their local addresses, starts the ones with start-action start, and
// starts the others' negotiations when the data plane raises an acquire
// on their trap policies.
type ike struct {
	dp     *dataplane.Dataplane
	d      *control.Daemon
	udp    *control.UDPTransport
	conns  []*connection
	log    *slog.Logger
	mu     sync.Mutex
	active map[string]*control.IKESA // negotiating or established, by connection
	// checked is when the last liveness check went out, by reqid; only
	// the maintenance goroutine uses it.
	checked map[uint64]time.Time
	// ikeDue is when each IKE SA (by initiator SPI) is to be rekeyed.
	ikeDue map[uint64]time.Time
}

func startIKE(ctx context.Context, conns []*connection, dp *dataplane.Dataplane, logKeys bool, log *slog.Logger) (*ike, error) {
	if len(conns) == 0 {
		return nil, nil
	}
	var addrs []netip.Addr
	seen := map[netip.Addr]bool{}
	var peers []*control.PeerConfig
	for _, c := range conns {
		if a := c.peer.Local.Addr(); !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
		peers = append(peers, c.peer)
	}
	udp, err := control.ListenUDP(addrs)
	if err != nil {
		return nil, err
	}
	d, err := control.NewDaemon(udp, &ikeInstaller{dp: dp, conns: conns, log: log}, peers, log.With("part", "ike"))
	if err != nil {
		udp.Close()
		return nil, err
	}
	if logKeys {
		log.Warn("logging IKE SA keys (-log-keys): for debugging only")
		d.LogKeys(true)
	}
	k := &ike{dp: dp, d: d, udp: udp, conns: conns, log: log, active: map[string]*control.IKESA{}, checked: map[uint64]time.Time{}, ikeDue: map[uint64]time.Time{}}
	d.OnPeerClose(func(name string) { go k.peerClosed(name) })
	udp.Serve(d)
	go func() {
		<-ctx.Done()
		udp.Close()
	}()
	for _, c := range conns {
		if c.start == "start" {
			k.initiate(c, "start")
		}
	}
	go k.closeIdle(ctx, dp)
	return k, nil
}

// initiate negotiates c unless a negotiation or an IKE SA is already there.
// An established IKE SA whose child SA is gone (expired, or deleted by the
// peer) gets a new child SA.
func (k *ike) initiate(c *connection, why string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if sa := k.active[c.peer.Name]; sa != nil {
		switch sa.State() {
		case "FAILED", "DELETED":
		case "ESTABLISHED":
			if k.hasChild(c) {
				return
			}
			if err := k.d.CreateChild(c.peer.Name); err == nil {
				k.log.Info("creating a child SA", "connection", c.peer.Name, "why", why)
				return
			}
			k.log.Info("replacing an IKE SA without child SA", "connection", c.peer.Name)
			sa.Delete()
		default:
			return
		}
	}
	sa, err := k.d.Initiate(c.peer.Name)
	if err != nil {
		k.log.Warn("initiate", "connection", c.peer.Name, "err", err)
		return
	}
	k.active[c.peer.Name] = sa
	k.log.Info("initiating", "connection", c.peer.Name, "why", why)
	go func() {
		if err := sa.Wait(); err != nil {
			k.log.Warn("IKE SA failed", "connection", c.peer.Name, "err", err)
			return
		}
		k.log.Info("IKE SA established", "connection", c.peer.Name)
		if sa.Children() == 0 {
			// The IKE SA came up alone (RFC 6023, or the peer refused the
			// child SA): now the child SA, in this IKE SA.
			if err := sa.CreateChild(); err != nil {
				k.log.Warn("child SA after a childless IKE SA", "connection", c.peer.Name, "err", err)
			}
		}
	}()
}

// checkPeers runs dead peer detection: a liveness check for each tunnel
// whose peer has given no proof of life (an authenticated IKE message, an
// ESP packet) for its dpd-delay, at most one per delay; and the
// dpd-action for each IKE SA found dead.
func (k *ike) checkPeers(now time.Time, spis map[uint64]uint32, inbound map[uint64]time.Time) {
	for _, c := range k.conns {
		k.mu.Lock()
		sa := k.active[c.peer.Name]
		if sa != nil && sa.Dead() {
			delete(k.active, c.peer.Name)
			k.mu.Unlock()
			k.log.Warn("peer dead", "connection", c.peer.Name, "dpd-action", c.dpdAction)
			if c.dpdAction == "restart" {
				k.initiate(c, "dpd restart")
			}
			continue
		}
		k.mu.Unlock()
		spi, up := spis[c.reqid]
		if c.dpd <= 0 || !up {
			continue
		}
		proof := inbound[c.reqid]
		if h := k.d.LastHeard(spi); h.After(proof) {
			proof = h
		}
		if now.Sub(proof) < c.dpd || now.Sub(k.checked[c.reqid]) < c.dpd {
			continue
		}
		k.checked[c.reqid] = now
		if err := k.d.CheckLiveness(spi); err == nil {
			k.log.Debug("liveness check", "connection", c.peer.Name, "silent", now.Sub(proof).Round(time.Millisecond))
		}
	}
}

// rekeyIKE rekeys the IKE SAs whose lifetime has come: each gets its own
// jittered deadline, so that many do not rekey at once and the two ends
// seldom start together.
func (k *ike) rekeyIKE(now time.Time) {
	seen := map[uint64]bool{}
	for _, i := range k.d.List() {
		if i.State != "ESTABLISHED" {
			continue
		}
		seen[i.SPIi] = true
		var c *connection
		for _, cc := range k.conns {
			if cc.peer.Name == i.Name {
				c = cc
			}
		}
		if c == nil {
			continue
		}
		// Reauthentication, when configured, comes instead of a rekey.
		life := c.ikeRekey
		if c.reauth > 0 {
			life = c.reauth
		}
		due, ok := k.ikeDue[i.SPIi]
		if !ok {
			due = i.Established.Add(life - time.Duration(mrand.Int64N(int64(life/10)+1)))
			k.ikeDue[i.SPIi] = due
		}
		if now.After(due) {
			k.ikeDue[i.SPIi] = now.Add(life) // once; the new SA gets its own
			if c.reauth > 0 {
				if i.Initiator {
					go k.reauthenticate(c)
				}
			} else if err := k.d.RekeyIKE(i.Name); err == nil {
				k.log.Info("rekeying IKE SA", "connection", i.Name, "spi_i", fmt.Sprintf("%016x", i.SPIi))
			}
		}
	}
	for spi := range k.ikeDue {
		if !seen[spi] {
			delete(k.ikeDue, spi)
		}
	}
}

// reauthenticate replaces the connection's IKE SA and child SAs with new
// ones negotiated from the start: the new ones first and then the old
// ones deleted (make-before-break, the default; the data plane sends on
// the newest outbound SA of the reqid as soon as it is installed), or the
// old ones deleted first.
func (k *ike) reauthenticate(c *connection) (string, error) {
	var old []uint32 // a child SPI of each old IKE SA
	for _, i := range k.d.List() {
		if i.Name == c.peer.Name && i.State == "ESTABLISHED" && len(i.Children) > 0 {
			old = append(old, i.Children[0].InSPI)
		}
	}
	deleteOld := func() {
		for _, spi := range old {
			k.d.DeleteIKESAOf(spi)
		}
	}
	if !c.mbb {
		deleteOld()
		// Wait for the old SAs to go before the new IKE_SA_INIT.
		for range 50 {
			if !k.hasChild(c) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	k.mu.Lock()
	sa, err := k.d.Initiate(c.peer.Name)
	if err == nil {
		k.active[c.peer.Name] = sa
	}
	k.mu.Unlock()
	if err != nil {
		return "", err
	}
	k.log.Info("reauthenticating", "connection", c.peer.Name, "make-before-break", c.mbb)
	go func() {
		if err := sa.Wait(); err != nil {
			k.log.Warn("reauthentication failed", "connection", c.peer.Name, "err", err)
			return
		}
		if sa.Children() == 0 {
			// A childless IKE SA (RFC 6023): its child SA now.
			if err := sa.CreateChild(); err != nil {
				k.log.Warn("child SA after reauthentication", "connection", c.peer.Name, "err", err)
			}
		}
		if !c.mbb {
			return
		}
		// Make before break: the old SAs go once the new child SA is in.
		for range 100 {
			if sa.Children() > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		deleteOld()
	}()
	return "reauthenticating " + c.peer.Name, nil
}

// peerClosed applies the close-action of a connection whose tunnel the
// peer closed.
func (k *ike) peerClosed(name string) {
	for _, c := range k.conns {
		if c.peer.Name != name {
			continue
		}
		k.log.Info("peer closed the tunnel", "connection", name, "close-action", c.closeAct)
		if c.closeAct == "start" {
			k.initiate(c, "close-action start")
		}
	}
}

// hasChild reports whether the data plane holds an outbound SA of c.
func (k *ike) hasChild(c *connection) bool {
	for _, sa := range k.dp.SAs() {
		if sa.ReqID == c.reqid && !sa.Inbound {
			return true
		}
	}
	return false
}

// event handles a data plane event for the IKE side; it reports whether
// it was one of ours.
func (k *ike) event(ev dataplane.Event) bool {
	if k == nil {
		return false
	}
	switch ev.Kind {
	case dataplane.EventAcquire:
		for _, c := range k.conns {
			if c.reqid == ev.Policy.SA {
				k.initiate(c, "acquire "+ev.Packet.Src.String()+" > "+ev.Packet.Dst.String())
				return true
			}
		}
	case dataplane.EventSoftExpire:
		// Make-before-break: the new SAs go in before the old ones go.
		if err := k.d.RekeyChild(ev.SPI); err == nil {
			k.log.Info("rekeying child SA", "spi", fmt.Sprintf("%#08x", ev.SPI), "reason", ev.Reason)
			return true
		}
	case dataplane.EventHardExpire:
		// The data plane has deleted its half already; tell the peer.
		if err := k.d.DeleteChild(ev.SPI); err == nil {
			k.log.Info("child SA expired", "spi", fmt.Sprintf("%#08x", ev.SPI), "reason", ev.Reason)
			return true
		}
	}
	return false
}

// closeIdle runs until ctx is done, closing the tunnels that carried no
// packet either way for their connection's inactivity time. Activity is
// tracked per connection, across rekeys: a fresh SA has carried nothing
// yet, which is no reason to close the tunnel it continues.
func (k *ike) closeIdle(ctx context.Context, dp *dataplane.Dataplane) {
	t := time.NewTicker(time.Second / 4)
	defer t.Stop()
	last := map[uint64]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			spis := map[uint64]uint32{}
			inbound := map[uint64]time.Time{} // last ESP from the peer
			for _, sa := range dp.SAs() {
				if sa.Inbound && sa.LastUse.After(inbound[sa.ReqID]) {
					inbound[sa.ReqID] = sa.LastUse
				}
				if !sa.LastUse.IsZero() && sa.LastUse.After(last[sa.ReqID]) {
					last[sa.ReqID] = sa.LastUse
				}
				if _, ok := last[sa.ReqID]; !ok {
					last[sa.ReqID] = now
				}
				spis[sa.ReqID] = sa.SPI
			}
			for reqid := range last {
				if _, up := spis[reqid]; !up {
					delete(last, reqid)
				}
			}
			k.checkPeers(now, spis, inbound)
			k.rekeyIKE(now)
			for _, c := range k.conns {
				spi, up := spis[c.reqid]
				if !up || c.inactivity <= 0 || now.Sub(last[c.reqid]) < c.inactivity {
					continue
				}
				del := k.d.DeleteIKESAOf
				if c.keepIKE {
					del = k.d.DeleteChild
				}
				if err := del(spi); err == nil {
					k.log.Info("closing idle tunnel", "connection", c.peer.Name, "idle", now.Sub(last[c.reqid]).Round(time.Second), "keep-ike", c.keepIKE)
					last[c.reqid] = now // once per inactivity period while it goes
				}
			}
		}
	}
}

// nameSAs gives each SA of an IKE connection its connection's name.
func (k *ike) nameSAs(sas []api.SA) {
	if k == nil {
		return
	}
	names := map[uint64]string{}
	for _, c := range k.conns {
		names[c.reqid] = c.peer.Name
	}
	for i := range sas {
		sas[i].Conn = names[sas[i].ReqID]
	}
}

// list describes the IKE SAs for espxctl.
func (k *ike) list() []api.IKESA {
	if k == nil {
		return nil
	}
	now := time.Now()
	bySPI := map[[2]uint64]dataplane.SAInfo{}
	for _, s := range k.dp.SAs() {
		bySPI[[2]uint64{uint64(s.SPI), uint64(btou(s.Inbound))}] = s
	}
	var out []api.IKESA
	for _, i := range k.d.List() {
		a := api.IKESA{
			Name: i.Name, State: i.State, Initiator: i.Initiator,
			SPIi: fmt.Sprintf("%016x", i.SPIi), SPIr: fmt.Sprintf("%016x", i.SPIr),
			Local: i.Local.String(), Remote: i.Remote.String(), Suite: i.Suite, HeardS: -1,
		}
		switch {
		case i.NATLocal && i.NATRemote:
			a.NAT = "both"
		case i.NATLocal:
			a.NAT = "local"
		case i.NATRemote:
			a.NAT = "remote"
		}
		if !i.LastHeard.IsZero() {
			a.HeardS = int64(now.Sub(i.LastHeard).Seconds())
		}
		for _, c := range i.Children {
			ch := api.Child{
				Name:  c.Name,
				InSPI: fmt.Sprintf("%#08x", c.InSPI), OutSPI: fmt.Sprintf("%#08x", c.OutSPI),
				Proposal: c.Proposal, LocalTS: c.LocalTS, RemoteTS: c.RemoteTS, IdleSeconds: -1,
			}
			in, out := bySPI[[2]uint64{uint64(c.InSPI), 1}], bySPI[[2]uint64{uint64(c.OutSPI), 0}]
			ch.InPackets, ch.InBytes, ch.OutPackets, ch.OutBytes = in.Packets, in.Bytes, out.Packets, out.Bytes
			last := in.LastUse
			if out.LastUse.After(last) {
				last = out.LastUse
			}
			if !last.IsZero() {
				ch.IdleSeconds = int64(now.Sub(last).Seconds())
			}
			if !in.Added.IsZero() {
				ch.AgeSeconds = int64(now.Sub(in.Added).Seconds())
			}
			a.Children = append(a.Children, ch)
		}
		out = append(out, a)
	}
	return out
}

// command runs an operator's command: initiate a connection, rekey or
// delete the child SA with an SPI, or flush (delete) the IKE SAs of a connection, or
// all of them when arg is empty.
func (k *ike) command(cmd, arg string) (string, error) {
	if k == nil {
		return "", fmt.Errorf("no IKE connections configured")
	}
	conn := func() (*connection, error) {
		for _, c := range k.conns {
			if c.peer.Name == arg {
				return c, nil
			}
		}
		return nil, fmt.Errorf("no connection %q", arg)
	}
	child := func(act func(uint32) error, verb string) (string, error) {
		spi, err := strconv.ParseUint(arg, 0, 32)
		if err != nil {
			return "", fmt.Errorf("%s: SPI %q: want a number like 0xc1a2b3c4", cmd, arg)
		}
		if err := act(uint32(spi)); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s child SA %#08x", verb, spi), nil
	}
	switch cmd {
	case "initiate":
		c, err := conn()
		if err != nil {
			return "", err
		}
		k.initiate(c, "operator")
		return "initiating " + arg, nil
	case "rekey":
		return child(k.d.RekeyChild, "rekeying")
	case "delete":
		return child(k.d.DeleteChild, "deleting")
	case "reauth":
		c, err := conn()
		if err != nil {
			return "", err
		}
		return k.reauthenticate(c)
	case "flush":
		n := 0
		for _, i := range k.d.List() {
			if (arg == "" || i.Name == arg) && len(i.Children) > 0 {
				if k.d.DeleteIKESAOf(i.Children[0].InSPI) == nil {
					n++
				}
			}
		}
		return fmt.Sprintf("deleting %d IKE SAs", n), nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}
