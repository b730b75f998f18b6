package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/espx/espx/crypto"
)

// Mode is the ESP mode of an SA.
type Mode uint8

// ESP modes, RFC 4301 section 4.1.
const (
	ModeTunnel Mode = iota
	ModeTransport
)

func (m Mode) String() string {
	if m == ModeTransport {
		return "transport"
	}
	return "tunnel"
}

// Sequence number limits (RFC 4303 section 3.3.3): an SA never wraps, so
// the last number it may send is the largest the counter holds. Before
// that, at the soft limit, it asks for a rekey.
const (
	maxSeq32 = 1<<32 - 1
	maxSeq64 = 1<<64 - 1
	// DefaultSoftSeq32 leaves a quarter of the 32-bit space, 2^30 packets
	// or over a minute at 10G line rate with 64-byte packets, to rekey in.
	DefaultSoftSeq32 = 3 << 30
	// DefaultSoftSeq64 is half the 64-bit space: unreachable in practice.
	DefaultSoftSeq64 = 1 << 63
)

// SAConfig describes one SA as the control plane negotiated it: what the
// data plane needs, not lifetimes or selectors, which stay in control.
type SAConfig struct {
	SPI uint32
	// ReqID ties the SA to the protect policies that use it (their
	// spd.Policy.SA), as XFRM's reqid does: outbound packets find their SA
	// by it, and decrypted packets must match a policy that names it.
	ReqID     uint64
	Transform crypto.Config
	Mode      Mode
	// ESN enables 64-bit extended sequence numbers (RFC 4303 section 2.2.1).
	ESN bool
	// Src and Dst are the outer addresses of a tunnel, this gateway's and
	// the peer's for an outbound SA, the other way round for an inbound
	// one. Transport mode uses the packet's own addresses.
	Src, Dst netip.Addr
	// Encap turns on UDP encapsulation (RFC 3948) with these ports; zero
	// ports mean 4500.
	Encap            bool
	SrcPort, DstPort uint16
	// ReplayWindow is the inbound anti-replay window in packets; 0
	// disables the check. The control plane's default is
	// DefaultReplayWindow.
	ReplayWindow int
	// TFCPad pads the payload of tunnel-mode packets up to this many bytes
	// (traffic flow confidentiality, RFC 4303 section 2.4). 0 disables.
	TFCPad int
	// TTL of the outer header in tunnel mode; 0 means 64.
	TTL uint8
	// SetDSCP writes DSCP into the outer header instead of copying the
	// inner packet's DSCP.
	SetDSCP bool
	DSCP    uint8
	// SoftSeq is the sequence number from which the SA reports that it
	// needs a rekey; 0 means DefaultSoftSeq32 or DefaultSoftSeq64.
	SoftSeq uint64
	// FirstSeq starts the outbound counter further on, for tests of the
	// 2^32 boundary: the first packet gets FirstSeq+1.
	FirstSeq uint64
}

// ErrSAConfig is wrapped by the errors of NewOutboundSA and NewInboundSA.
var ErrSAConfig = errors.New("invalid SA")

// maxTFCPad keeps TFC padding inside a jumbo frame.
const maxTFCPad = 9000

func (c *SAConfig) check() error {
	if c.SPI < 256 {
		// RFC 4303 section 2.1: 1-255 are reserved by IANA, 0 is local.
		return fmt.Errorf("%w: SPI %#x is reserved", ErrSAConfig, c.SPI)
	}
	if c.Mode == ModeTunnel {
		if !c.Src.IsValid() || !c.Dst.IsValid() {
			return fmt.Errorf("%w: tunnel mode needs outer addresses", ErrSAConfig)
		}
		if c.Src.Is4() != c.Dst.Is4() || c.Src.Is4In6() || c.Dst.Is4In6() {
			return fmt.Errorf("%w: outer addresses %v and %v are not of one family", ErrSAConfig, c.Src, c.Dst)
		}
	} else if c.Mode != ModeTransport {
		return fmt.Errorf("%w: mode %d", ErrSAConfig, c.Mode)
	}
	if c.ReplayWindow < 0 || c.ReplayWindow > MaxReplayWindow {
		return fmt.Errorf("%w: replay window %d, want 0 to %d", ErrSAConfig, c.ReplayWindow, MaxReplayWindow)
	}
	if c.TFCPad < 0 || c.TFCPad > maxTFCPad {
		return fmt.Errorf("%w: TFC padding %d, want 0 to %d", ErrSAConfig, c.TFCPad, maxTFCPad)
	}
	if c.DSCP > 63 {
		return fmt.Errorf("%w: DSCP %d", ErrSAConfig, c.DSCP)
	}
	return nil
}

// SAStats count what an SA has carried, for lifetimes and `espxctl show`.
// Workers add to them once per run of packets, not once per packet.
type SAStats struct {
	Packets atomic.Uint64
	Bytes   atomic.Uint64 // plaintext bytes
	// LastUse is when a worker last carried a packet on the SA, in Unix
	// nanoseconds of the worker's batch clock; 0 if never.
	LastUse atomic.Int64
	// What an inbound SA dropped, as XFRM's per-state statistics count
	// it: replays inside the window, sequence numbers left of it, and
	// ICVs that did not verify. Drops are rare; each is one atomic add.
	Replay, TooOld, AuthFailed atomic.Uint64
}

// dropped counts a drop of d against the SA, if it is one an SA counts.
func (s *SAStats) dropped(d Drop) {
	switch d {
	case DropReplay:
		s.Replay.Add(1)
	case DropTooOld:
		s.TooOld.Add(1)
	case DropAuthFailed:
		s.AuthFailed.Add(1)
	}
}

// touch records a run of packets carried at now.
func (s *SAStats) touch(pkts, bytes uint64, now int64) {
	s.Packets.Add(pkts)
	s.Bytes.Add(bytes)
	if now != 0 && s.LastUse.Load() != now {
		s.LastUse.Store(now)
	}
}

// OutboundSA is the data plane's runtime form of an outbound SA: the
// transform with its keys, the outer headers prebuilt, and the sequence
// counter. Apart from the counter and stats it is immutable, and it is
// published to workers through an atomic pointer.
type OutboundSA struct {
	spi   uint32
	reqid uint64
	dst   netip.Addr // outer destination, tunnel mode
	esp   *crypto.ESP
	mode  Mode
	esn   bool
	encap bool
	v6    bool // outer family, tunnel mode

	// tmpl is the tunnel-mode outer IP header, then the UDP header when
	// encapsulating, then the SPI; tmplLen is how much of it is used.
	tmpl    [ipv6Len + udpLen + 4]byte
	tmplLen int
	ipLen   int // 20 or 40
	// addrSum is the one's complement sum of the outer addresses, for the
	// IPv6 UDP checksum.
	addrSum uint64
	// csumBase is the one's complement sum of the IPv4 template, whose
	// TOS, length, ID, flags and checksum are zero: each packet adds its
	// own to it.
	csumBase     uint64
	sport, dport uint16
	tfc          int
	setDSCP      bool
	dscp         uint8
	soft, hard   uint64

	// seq is the last sequence number handed out. Workers reserve runs
	// of numbers by compare-and-swap, so each number goes to exactly one
	// packet and the counter never passes hard.
	seq atomic.Uint64

	Stats SAStats
}

// NewOutboundSA builds the runtime form of an outbound SA.
func NewOutboundSA(c SAConfig) (*OutboundSA, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("outbound SA spi=%#x: %w", c.SPI, err)
	}
	esp, err := crypto.NewESP(c.Transform)
	if err != nil {
		return nil, fmt.Errorf("outbound SA spi=%#x: %w", c.SPI, err)
	}
	sa := &OutboundSA{
		spi: c.SPI, reqid: c.ReqID, dst: c.Dst, esp: esp, mode: c.Mode, esn: c.ESN, encap: c.Encap,
		sport: orPort(c.SrcPort), dport: orPort(c.DstPort),
		tfc: c.TFCPad, setDSCP: c.SetDSCP, dscp: c.DSCP,
		hard: maxSeq32, soft: c.SoftSeq,
	}
	if c.ESN {
		sa.hard = maxSeq64
	}
	if sa.soft == 0 {
		sa.soft = DefaultSoftSeq32
		if c.ESN {
			sa.soft = DefaultSoftSeq64
		}
	}
	if c.FirstSeq >= sa.hard {
		return nil, fmt.Errorf("outbound SA spi=%#x: %w: first sequence number %d past the end", c.SPI, ErrSAConfig, c.FirstSeq)
	}
	sa.seq.Store(c.FirstSeq)
	if c.Mode == ModeTunnel {
		sa.buildTemplate(c)
	}
	return sa, nil
}

func orPort(p uint16) uint16 {
	if p == 0 {
		return PortNATT
	}
	return p
}

// buildTemplate lays out the constant part of the outer headers.
func (sa *OutboundSA) buildTemplate(c SAConfig) {
	ttl := c.TTL
	if ttl == 0 {
		ttl = ipv4DefaultTTL
	}
	proto := uint8(protoESP)
	if c.Encap {
		proto = protoUDP
	}
	t := sa.tmpl[:]
	if c.Src.Is4() {
		h := ipv4(t)
		h[0] = 4<<4 | ipv4MinLen/4
		h[ipv4TTLOff] = ttl
		h[ipv4ProtoOff] = proto
		s, d := c.Src.As4(), c.Dst.As4()
		copy(h[ipv4SrcOff:], s[:])
		copy(h[ipv4DstOff:], d[:])
		sa.ipLen = ipv4MinLen
		sa.csumBase = sum(h[:ipv4MinLen], 0)
	} else {
		sa.v6 = true
		h := ipv6(t)
		h[0] = 6 << 4
		h[ipv6NextOff] = proto
		h[ipv6HopOff] = ttl
		s, d := c.Src.As16(), c.Dst.As16()
		copy(h[ipv6SrcOff:], s[:])
		copy(h[ipv6DstOff:], d[:])
		sa.addrSum = sum(h[ipv6SrcOff:ipv6DstOff+16], 0)
		sa.ipLen = ipv6Len
	}
	n := sa.ipLen
	if c.Encap {
		putPorts(t[n:], sa.sport, sa.dport)
		n += udpLen
	}
	putUint32(t[n:], sa.spi)
	sa.tmplLen = n + 4
}

// SPI is the SA's security parameter index.
func (sa *OutboundSA) SPI() uint32 { return sa.spi }

// ReqID is the request ID that ties the SA to its policies.
func (sa *OutboundSA) ReqID() uint64 { return sa.reqid }

// Mode is the SA's ESP mode.
func (sa *OutboundSA) Mode() Mode { return sa.mode }

// OuterDst is the outer destination of a tunnel-mode SA.
func (sa *OutboundSA) OuterDst() netip.Addr { return sa.dst }

// MaxInner is the largest IP packet that, encapsulated, fits in mtu
// bytes: the MTU to report in ICMP errors for the path through the SA.
func (sa *OutboundSA) MaxInner(mtu int) int {
	fixed := sa.OuterLen(0) - ptLenFor(0, sa.esp.PadTo())
	pad := sa.esp.PadTo()
	return (mtu-fixed)/pad*pad - crypto.TrailerLen
}

// OuterLen is the length of the packet that encapsulating an IP packet of
// n bytes produces, TFC padding aside: for path MTU checks before the
// work is done.
func (sa *OutboundSA) OuterLen(n int) int {
	outer := 0
	if sa.mode == ModeTunnel {
		outer = sa.ipLen
	}
	if sa.encap {
		outer += udpLen
	}
	return outer + crypto.HeaderLen + sa.esp.IVLen() + ptLenFor(n, sa.esp.PadTo()) + sa.esp.ICVLen()
}

// String describes the SA without its keys.
func (sa *OutboundSA) String() string {
	return fmt.Sprintf("out spi=%#08x %v %v esn=%v encap=%v", sa.spi, sa.mode, sa.esp, sa.esn, sa.encap)
}

// Seq is the last sequence number handed out.
func (sa *OutboundSA) Seq() uint64 { return sa.seq.Load() }

// NeedsRekey says the SA has passed its soft sequence number limit.
func (sa *OutboundSA) NeedsRekey() bool { return sa.seq.Load() >= sa.soft }

// Exhausted says the SA has no sequence numbers left: it sends nothing more.
func (sa *OutboundSA) Exhausted() bool { return sa.seq.Load() >= sa.hard }

// reserve hands out up to n consecutive sequence numbers and returns the
// first and how many; fewer than n, or none, when the SA is running out.
func (sa *OutboundSA) reserve(n int) (first uint64, got int) {
	for {
		cur := sa.seq.Load()
		k := min(uint64(n), sa.hard-cur)
		if k == 0 {
			return 0, 0
		}
		if sa.seq.CompareAndSwap(cur, cur+k) {
			return cur + 1, int(k)
		}
	}
}

// InboundSA is the runtime form of an inbound SA: the transform, the
// replay window, and what the packets must look like.
type InboundSA struct {
	spi    uint32
	reqid  uint64
	esp    *crypto.ESP
	mode   Mode
	esn    bool
	encap  bool
	window *ReplayWindow

	Stats SAStats
}

// NewInboundSA builds the runtime form of an inbound SA.
func NewInboundSA(c SAConfig) (*InboundSA, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("inbound SA spi=%#x: %w", c.SPI, err)
	}
	esp, err := crypto.NewESP(c.Transform)
	if err != nil {
		return nil, fmt.Errorf("inbound SA spi=%#x: %w", c.SPI, err)
	}
	return &InboundSA{
		spi: c.SPI, reqid: c.ReqID, esp: esp, mode: c.Mode, esn: c.ESN, encap: c.Encap,
		window: NewReplayWindow(c.ReplayWindow, c.ESN),
	}, nil
}

// SPI is the SA's security parameter index.
func (sa *InboundSA) SPI() uint32 { return sa.spi }

// ReqID is the request ID that ties the SA to its policies.
func (sa *InboundSA) ReqID() uint64 { return sa.reqid }

// Window is the SA's anti-replay window.
func (sa *InboundSA) Window() *ReplayWindow { return sa.window }

// String describes the SA without its keys.
func (sa *InboundSA) String() string {
	return fmt.Sprintf("in spi=%#08x %v %v esn=%v encap=%v window=%d", sa.spi, sa.mode, sa.esp, sa.esn, sa.encap, sa.window.Size())
}
