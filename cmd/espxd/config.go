package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/espx/espx/crypto"
	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/spd"
)

// fileConfig is espxd's configuration file, TOML. See
// deploy/espxd.example.toml for every key with its meaning.
type fileConfig struct {
	Dataplane struct {
		Protected     string `toml:"protected"`
		Unprotected   string `toml:"unprotected"`
		Queues        int    `toml:"queues"` // 0: every queue of the device
		CPUs          []int  `toml:"cpus"`
		DefaultPolicy string `toml:"default-policy"` // bypass or discard
		XDPMode       string `toml:"xdp-mode"`       // auto, native, generic
		BindMode      string `toml:"bind-mode"`      // auto, zerocopy, copy
		Frames        int    `toml:"frames"`
		FrameSize     int    `toml:"frame-size"`
		SPHashIPv4    []int  `toml:"sp-hash-ipv4"` // [local, remote]
		SPHashIPv6    []int  `toml:"sp-hash-ipv6"`
	} `toml:"dataplane"`
	Acquire struct {
		Timeout duration `toml:"timeout"`
		Hold    int      `toml:"hold"`
		Rate    float64  `toml:"rate"`
	} `toml:"acquire"`
	Metrics struct {
		Listen string `toml:"listen"`
		PerSA  int    `toml:"per-sa"`
	} `toml:"metrics"`
	Control struct {
		Socket string `toml:"socket"`
	} `toml:"control"`
	SA         []saConfig     `toml:"sa"`
	Policy     []policyConfig `toml:"policy"`
	Connection []connConfig   `toml:"connection"`
}

// saConfig is a manual SA, as `ip xfrm state add` takes one.
type saConfig struct {
	Dir          string   `toml:"dir"` // in or out
	SPI          string   `toml:"spi"` // 0x... or decimal
	ReqID        uint64   `toml:"reqid"`
	Mode         string   `toml:"mode"` // tunnel (default) or transport
	Src          string   `toml:"src"`
	Dst          string   `toml:"dst"`
	Encryption   string   `toml:"encryption"` // aes-gcm-16, aes-cbc, chacha20-poly1305, aes-gmac, null
	Key          string   `toml:"key"`        // hex; GCM, GMAC and ChaCha20 keys end in the 4-byte salt
	Integrity    string   `toml:"integrity"`  // hmac-sha2-256-128, hmac-sha2-384-192, hmac-sha2-512-256
	IntegKey     string   `toml:"integrity-key"`
	ESN          bool     `toml:"esn"`
	ReplayWindow *int     `toml:"replay-window"`
	Encap        bool     `toml:"encap"` // ESP in UDP (RFC 3948)
	SrcPort      uint16   `toml:"src-port"`
	DstPort      uint16   `toml:"dst-port"`
	TFCPad       int      `toml:"tfc-pad"`
	SoftBytes    uint64   `toml:"soft-bytes"`
	HardBytes    uint64   `toml:"hard-bytes"`
	SoftPackets  uint64   `toml:"soft-packets"`
	HardPackets  uint64   `toml:"hard-packets"`
	SoftTime     duration `toml:"soft-time"`
	HardTime     duration `toml:"hard-time"`
}

// policyConfig is a policy, as `ip xfrm policy add` takes one.
type policyConfig struct {
	Dir         string `toml:"dir"` // out, in, fwd
	Local       string `toml:"local"`
	Remote      string `toml:"remote"`
	Proto       string `toml:"proto"` // tcp, udp, sctp, icmp, ipv6-icmp, a number, or empty
	LocalPorts  string `toml:"local-ports"`
	RemotePorts string `toml:"remote-ports"`
	Priority    uint32 `toml:"priority"`
	Action      string `toml:"action"` // protect, bypass, discard
	ReqID       uint64 `toml:"reqid"`
	Trap        bool   `toml:"trap"`
}

type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// config is the checked configuration.
type config struct {
	file       fileConfig
	dp         dataplane.Config
	sas        []dataplane.SA
	policies   []spd.Policy
	conns      []*connection
	attachMode string
	bindMode   string
	// logKeys logs IKE SA keys for Wireshark (-v -log-keys; never from
	// the file).
	logKeys bool
}

// fieldError names the field that is wrong and why.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func ferr(field string, format string, a ...any) error {
	return &fieldError{field, fmt.Errorf(format, a...)}
}

// loadConfig reads and checks the file at path. Any error names the field
// and the reason, and nothing is half-applied: the caller starts only from
// a config that loaded whole.
func loadConfig(path string) (*config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(string(b))
}

func parseConfig(text string) (*config, error) {
	c := &config{}
	md, err := toml.Decode(text, &c.file)
	if err != nil {
		return nil, err
	}
	if u := md.Undecoded(); len(u) > 0 {
		keys := make([]string, len(u))
		for i, k := range u {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown key(s): %s", strings.Join(keys, ", "))
	}
	var errs []error
	f := &c.file
	d := &f.Dataplane
	if d.Protected == "" {
		errs = append(errs, ferr("dataplane.protected", "missing: the interface towards the protected networks"))
	}
	if d.Unprotected == "" {
		errs = append(errs, ferr("dataplane.unprotected", "missing: the interface towards the peers"))
	}
	if d.Protected != "" && d.Protected == d.Unprotected {
		errs = append(errs, ferr("dataplane.unprotected", "the same interface as dataplane.protected"))
	}
	switch d.DefaultPolicy {
	case "", "discard":
	case "bypass":
		c.dp.DefaultBypass = true
	default:
		errs = append(errs, ferr("dataplane.default-policy", "%q: want bypass or discard", d.DefaultPolicy))
	}
	c.attachMode, c.bindMode = d.XDPMode, d.BindMode
	if c.attachMode == "" {
		c.attachMode = "auto"
	}
	if c.bindMode == "" {
		c.bindMode = "auto"
	}
	if c.attachMode != "auto" && c.attachMode != "native" && c.attachMode != "generic" {
		errs = append(errs, ferr("dataplane.xdp-mode", "%q: want auto, native or generic", d.XDPMode))
	}
	if c.bindMode != "auto" && c.bindMode != "zerocopy" && c.bindMode != "copy" {
		errs = append(errs, ferr("dataplane.bind-mode", "%q: want auto, zerocopy or copy", d.BindMode))
	}
	if d.Queues < 0 {
		errs = append(errs, ferr("dataplane.queues", "%d: want 0 (all) or more", d.Queues))
	}
	th := spd.DefaultThresholds()
	for _, h := range []struct {
		name       string
		v          []int
		max        int
		lo, remote *uint8
	}{
		{"dataplane.sp-hash-ipv4", d.SPHashIPv4, 32, &th.V4Local, &th.V4Remote},
		{"dataplane.sp-hash-ipv6", d.SPHashIPv6, 128, &th.V6Local, &th.V6Remote},
	} {
		if h.v == nil {
			continue
		}
		if len(h.v) != 2 || h.v[0] < 0 || h.v[1] < 0 || h.v[0] > h.max || h.v[1] > h.max {
			errs = append(errs, ferr(h.name, "%v: want [local, remote], each 0 to %d", h.v, h.max))
			continue
		}
		*h.lo, *h.remote = uint8(h.v[0]), uint8(h.v[1])
	}
	c.dp.Thresholds = th
	c.dp.Acquire = dataplane.AcquireConfig{Timeout: f.Acquire.Timeout.Duration, Hold: f.Acquire.Hold, Rate: f.Acquire.Rate}
	if f.Acquire.Timeout.Duration < 0 || f.Acquire.Rate < 0 {
		errs = append(errs, ferr("acquire", "timeout and rate must not be negative"))
	}
	if f.Control.Socket == "" {
		f.Control.Socket = "/run/espx/espxd.sock"
	}
	for i, s := range f.SA {
		sa, err := s.convert()
		if err != nil {
			errs = append(errs, &fieldError{fmt.Sprintf("sa[%d]", i), err})
			continue
		}
		c.sas = append(c.sas, sa)
	}
	seen := map[[2]uint32]int{}
	for i, sa := range c.sas {
		k := [2]uint32{sa.SPI, btou(sa.Inbound)}
		if j, dup := seen[k]; dup {
			errs = append(errs, ferr(fmt.Sprintf("sa[%d].spi", i), "%#x: already used by sa[%d] in the same direction", sa.SPI, j))
		}
		seen[k] = i
	}
	for i, p := range f.Policy {
		pol, err := p.convert()
		if err != nil {
			errs = append(errs, &fieldError{fmt.Sprintf("policy[%d]", i), err})
			continue
		}
		c.policies = append(c.policies, pol)
	}
	reqids := map[uint64]string{}
	for _, sa := range c.sas {
		reqids[sa.ReqID] = "sa"
	}
	names := map[string]bool{}
	for i := range f.Connection {
		conn, err := f.Connection[i].convert(i)
		if err != nil {
			errs = append(errs, &fieldError{fmt.Sprintf("connection[%d]", i), err})
			continue
		}
		if names[conn.peer.Name] {
			errs = append(errs, ferr(fmt.Sprintf("connection[%d].name", i), "%q used twice", conn.peer.Name))
		}
		names[conn.peer.Name] = true
		if reqids[conn.reqid] != "" {
			errs = append(errs, ferr(fmt.Sprintf("connection[%d].reqid", i), "%d is already used by a static SA or another connection", conn.reqid))
		}
		reqids[conn.reqid] = conn.peer.Name
		c.conns = append(c.conns, conn)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func btou(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

var encrNames = map[string]crypto.EncrID{
	"aes-gcm-16":        crypto.ENCR_AES_GCM_16,
	"aes-cbc":           crypto.ENCR_AES_CBC,
	"chacha20-poly1305": crypto.ENCR_CHACHA20_POLY1305,
	"aes-gmac":          crypto.ENCR_NULL_AUTH_AES_GMAC,
	"null":              crypto.ENCR_NULL,
}

var integNames = map[string]crypto.IntegID{
	"":                  crypto.AUTH_NONE,
	"hmac-sha2-256-128": crypto.AUTH_HMAC_SHA2_256_128,
	"hmac-sha2-384-192": crypto.AUTH_HMAC_SHA2_384_192,
	"hmac-sha2-512-256": crypto.AUTH_HMAC_SHA2_512_256,
}

func hexKey(field, s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil {
		// Never echo the key itself in the error.
		return nil, ferr(field, "not a hex string")
	}
	return b, nil
}

func (s *saConfig) convert() (dataplane.SA, error) {
	var sa dataplane.SA
	switch s.Dir {
	case "in":
		sa.Inbound = true
	case "out":
	default:
		return sa, ferr("dir", "%q: want in or out", s.Dir)
	}
	spi, err := strconv.ParseUint(s.SPI, 0, 32)
	if err != nil {
		return sa, ferr("spi", "%q: want a 32-bit number, e.g. 0x1001", s.SPI)
	}
	sa.SPI = uint32(spi)
	sa.ReqID = s.ReqID
	switch s.Mode {
	case "", "tunnel":
		sa.Mode = dataplane.ModeTunnel
	case "transport":
		sa.Mode = dataplane.ModeTransport
	default:
		return sa, ferr("mode", "%q: want tunnel or transport", s.Mode)
	}
	if s.Src != "" || sa.Mode == dataplane.ModeTunnel {
		if sa.Src, err = netip.ParseAddr(s.Src); err != nil {
			return sa, ferr("src", "%v", err)
		}
		if sa.Dst, err = netip.ParseAddr(s.Dst); err != nil {
			return sa, ferr("dst", "%v", err)
		}
	}
	encr, ok := encrNames[s.Encryption]
	if !ok {
		return sa, ferr("encryption", "%q: want one of aes-gcm-16, aes-cbc, chacha20-poly1305, aes-gmac, null", s.Encryption)
	}
	integ, ok := integNames[s.Integrity]
	if !ok {
		return sa, ferr("integrity", "%q: want one of hmac-sha2-256-128, hmac-sha2-384-192, hmac-sha2-512-256", s.Integrity)
	}
	sa.Transform = crypto.Config{Encr: encr, Integ: integ}
	if encr != crypto.ENCR_NULL {
		if sa.Transform.EncrKey, err = hexKey("key", s.Key); err != nil {
			return sa, err
		}
	}
	if integ != crypto.AUTH_NONE {
		if sa.Transform.IntegKey, err = hexKey("integrity-key", s.IntegKey); err != nil {
			return sa, err
		}
	}
	if _, err := crypto.NewESP(sa.Transform); err != nil {
		return sa, ferr("encryption", "%v", err)
	}
	sa.ESN = s.ESN
	sa.ReplayWindow = 4096
	if s.ReplayWindow != nil {
		sa.ReplayWindow = *s.ReplayWindow
	}
	sa.Encap, sa.SrcPort, sa.DstPort = s.Encap, s.SrcPort, s.DstPort
	sa.TFCPad = s.TFCPad
	sa.Lifetime = dataplane.Lifetime{
		SoftBytes: s.SoftBytes, HardBytes: s.HardBytes, SoftPackets: s.SoftPackets, HardPackets: s.HardPackets,
		SoftAdd: s.SoftTime.Duration, HardAdd: s.HardTime.Duration,
	}
	// The data plane's own checks (SPI range, families, window) run now,
	// so that a bad SA stops the start instead of failing half-way.
	if sa.Inbound {
		_, err = dataplane.NewInboundSA(sa.SAConfig)
	} else {
		_, err = dataplane.NewOutboundSA(sa.SAConfig)
	}
	return sa, err
}

var protoNames = map[string]uint8{"": 0, "any": 0, "icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58, "sctp": 132}

func parsePorts(field, s string) (spd.PortRange, error) {
	if s == "" || s == "any" {
		return spd.PortRange{}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return spd.PortRange{}, ferr(field, "%q: want a port or a range like 1000-2000", s)
	}
	if !isRange {
		return spd.Port(uint16(a)), nil
	}
	b, err := strconv.ParseUint(hi, 10, 16)
	if err != nil || b < a {
		return spd.PortRange{}, ferr(field, "%q: want a port or a range like 1000-2000", s)
	}
	return spd.Ports(uint16(a), uint16(b)), nil
}

func (p *policyConfig) convert() (spd.Policy, error) {
	var pol spd.Policy
	switch p.Dir {
	case "out":
		pol.Dir = spd.DirOut
	case "in":
		pol.Dir = spd.DirIn
	case "fwd":
		pol.Dir = spd.DirFwd
	default:
		return pol, ferr("dir", "%q: want out, in or fwd", p.Dir)
	}
	var err error
	if pol.Local, err = netip.ParsePrefix(p.Local); err != nil {
		return pol, ferr("local", "%v", err)
	}
	if pol.Remote, err = netip.ParsePrefix(p.Remote); err != nil {
		return pol, ferr("remote", "%v", err)
	}
	if pol.Local.Addr().Is4() != pol.Remote.Addr().Is4() {
		return pol, ferr("remote", "%v is not of the family of local %v", pol.Remote, pol.Local)
	}
	proto, ok := protoNames[p.Proto]
	if !ok {
		n, err := strconv.ParseUint(p.Proto, 10, 8)
		if err != nil {
			return pol, ferr("proto", "%q: want tcp, udp, sctp, icmp, ipv6-icmp or a protocol number", p.Proto)
		}
		proto = uint8(n)
	}
	pol.Proto = proto
	if pol.LocalPorts, err = parsePorts("local-ports", p.LocalPorts); err != nil {
		return pol, err
	}
	if pol.RemotePorts, err = parsePorts("remote-ports", p.RemotePorts); err != nil {
		return pol, err
	}
	pol.Priority = p.Priority
	switch p.Action {
	case "protect":
		pol.Action = spd.Protect
		if p.ReqID == 0 {
			return pol, ferr("reqid", "a protect policy needs the reqid of its SAs")
		}
	case "bypass":
		pol.Action = spd.Bypass
	case "discard":
		pol.Action = spd.Discard
	default:
		return pol, ferr("action", "%q: want protect, bypass or discard", p.Action)
	}
	if p.Trap && pol.Action != spd.Protect {
		return pol, ferr("trap", "only a protect policy can be a trap")
	}
	pol.SA, pol.Trap = p.ReqID, p.Trap
	// Let the SPD check the rest (ports need a protocol, and so on).
	db, _ := spd.New(spd.DefaultThresholds())
	if _, err := db.Insert(pol); err != nil {
		return pol, err
	}
	return pol, nil
}
