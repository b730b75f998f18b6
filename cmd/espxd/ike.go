package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/espx/espx/control"
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
}

// connection is a checked connConfig.
type connection struct {
	peer     *control.PeerConfig
	reqid    uint64
	start    string
	priority uint32
	local    []netip.Prefix
	remote   []netip.Prefix
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
	if err := p.Check(); err != nil {
		return nil, err
	}
	return conn, nil
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
				spd.Policy{Dir: spd.DirOut, Selector: sel, Priority: c.priority, Action: spd.Protect, SA: c.reqid, Trap: c.start == "trap"},
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
}

func (in *ikeInstaller) reqid(remote netip.Addr) (uint64, error) {
	for _, c := range in.conns {
		if c.peer.Remote.Addr() == remote {
			return c.reqid, nil
		}
	}
	return 0, fmt.Errorf("no connection with peer %v", remote)
}

func (in *ikeInstaller) AllocSPI() (uint32, error) { return in.dp.AllocSPI() }

func (in *ikeInstaller) AddSA(c *control.ChildSA) error {
	reqid, err := in.reqid(c.Remote.Addr())
	if err != nil {
		return err
	}
	sa := dataplane.SA{Inbound: c.Inbound, SAConfig: dataplane.SAConfig{
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
	d      *control.Daemon
	udp    *control.UDPTransport
	conns  []*connection
	log    *slog.Logger
	mu     sync.Mutex
	active map[string]*control.IKESA // negotiating or established, by connection
}

func startIKE(ctx context.Context, conns []*connection, dp *dataplane.Dataplane, log *slog.Logger) (*ike, error) {
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
	udp.Serve(d)
	k := &ike{d: d, udp: udp, conns: conns, log: log, active: map[string]*control.IKESA{}}
	go func() {
		<-ctx.Done()
		udp.Close()
	}()
	for _, c := range conns {
		if c.start == "start" {
			k.initiate(c, "start")
		}
	}
	return k, nil
}

// initiate negotiates c unless a negotiation or an IKE SA is already there.
func (k *ike) initiate(c *connection, why string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if sa := k.active[c.peer.Name]; sa != nil {
		switch sa.State() {
		case "FAILED", "DELETED":
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
	}()
}

// event handles a data plane event for the IKE side; it reports whether
// it was one of ours.
func (k *ike) event(ev dataplane.Event) bool {
	if k == nil || ev.Kind != dataplane.EventAcquire {
		return false
	}
	for _, c := range k.conns {
		if c.reqid == ev.Policy.SA {
			k.initiate(c, "acquire "+ev.Packet.Src.String()+" > "+ev.Packet.Dst.String())
			return true
		}
	}
	return false
}
