package metrics

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/espx/espx/afxdp"
	"github.com/espx/espx/crypto"
	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/dataplane/internal/fakeport"
	"github.com/espx/espx/spd"
)

// fakeRouter routes by the longest matching prefix; every next hop is
// resolved.
type fakeRouter map[netip.Prefix]dataplane.NextHop

func (r fakeRouter) Route(dst netip.Addr, nh *dataplane.NextHop) dataplane.RouteResult {
	best := netip.Prefix{}
	for p := range r {
		if p.Contains(dst) && (!best.IsValid() || p.Bits() > best.Bits()) {
			best = p
		}
	}
	if !best.IsValid() {
		return dataplane.RouteNone
	}
	*nh = r[best]
	nh.Addr = dst
	return dataplane.RouteOK
}

func (fakeRouter) Resolve(int, netip.Addr)     {}
func (fakeRouter) Source(int, bool) netip.Addr { return netip.Addr{} }

// The test network: two gateways, each with one worker whose protected
// port is interface 1 and unprotected port interface 2.
//
//	10.1.0.0/16 - gwA 192.0.2.1 ~~ ESP ~~ 192.0.2.2 gwB - 10.2.0.0/16
const (
	ifProt   = 1
	ifUnprot = 2
	reqID    = 7
	spiAB    = 0x1001 // A to B
	spiBA    = 0x2001 // B to A
)

var (
	netA, netB   = netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/16")
	outerA       = netip.MustParseAddr("192.0.2.1")
	outerB       = netip.MustParseAddr("192.0.2.2")
	hostA, hostB = netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("10.2.0.10")
	macHost      = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	macGW        = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

// gateway is a data plane with one worker on fake ports.
type gateway struct {
	dp           *dataplane.Dataplane
	w            *dataplane.Worker
	prot, unprot *fakeport.Port
}

// newGateway builds one side of the test network: local and remote are the
// protected networks, self and peer the outer addresses, out and in the
// SPIs of its outbound and inbound SAs.
func newGateway(tb testing.TB, local, remote netip.Prefix, self, peer netip.Addr, out, in uint32) *gateway {
	tb.Helper()
	dp, err := dataplane.New(dataplane.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	u := fakeport.NewUMEM(tb, 1024)
	g := &gateway{dp: dp, prot: &fakeport.Port{Index: ifProt, Mem: u}, unprot: &fakeport.Port{Index: ifUnprot, Mem: u}}
	rt := fakeRouter{
		local:                                 {Ifindex: ifProt, SrcMAC: macGW, DstMAC: macHost, MTU: 1500},
		netip.PrefixFrom(peer, peer.BitLen()): {Ifindex: ifUnprot, SrcMAC: macGW, DstMAC: macHost, MTU: 1500},
	}
	if g.w, err = dp.AddWorker(dataplane.WorkerConfig{Protected: g.prot, Unprotected: g.unprot, Mem: u, Router: rt, CPU: -1}); err != nil {
		tb.Fatal(err)
	}
	for _, dir := range []spd.Dir{spd.DirOut, spd.DirFwd} {
		p := spd.Policy{Dir: dir, Selector: spd.Selector{Local: local, Remote: remote}, Priority: 100, Action: spd.Protect, SA: reqID}
		if _, err := dp.AddPolicy(p); err != nil {
			tb.Fatal(err)
		}
	}
	for _, sa := range []dataplane.SA{
		{SAConfig: dataplane.SAConfig{SPI: out, ReqID: reqID, Transform: gcm(out), Src: self, Dst: peer}},
		{SAConfig: dataplane.SAConfig{SPI: in, ReqID: reqID, Transform: gcm(in), Src: peer, Dst: self, ReplayWindow: 64}, Inbound: true},
	} {
		if err := dp.AddSA(sa); err != nil {
			tb.Fatal(err)
		}
	}
	return g
}

// newPair builds gateways A and B with SAs between them.
func newPair(tb testing.TB) (a, b *gateway) {
	tb.Helper()
	return newGateway(tb, netA, netB, outerA, outerB, spiAB, spiBA),
		newGateway(tb, netB, netA, outerB, outerA, spiBA, spiAB)
}

// poll runs the worker until it has nothing more to do.
func (g *gateway) poll() {
	for g.w.Poll() > 0 {
	}
}

// gcm is an AES-GCM-128 transform whose key (and salt) depends on spi, so
// that both gateways derive the same key for an SA.
func gcm(spi uint32) crypto.Config {
	k := make([]byte, 20)
	for i := range k {
		k[i] = byte(i)
	}
	binary.BigEndian.PutUint32(k, spi)
	return crypto.Config{Encr: crypto.ENCR_AES_GCM_16, EncrKey: k}
}

// udpFrame is an Ethernet frame with an IPv4 UDP packet from src to dst
// carrying n bytes of payload.
func udpFrame(src, dst netip.Addr, n int) []byte {
	const ethLen, ipLen, udpLen = 14, 20, 8
	f := make([]byte, ethLen+ipLen+udpLen+n)
	copy(f[0:6], macGW[:])
	copy(f[6:12], macHost[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[ethLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(ipLen+udpLen+n))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	var sum uint32
	for i := 0; i < ipLen; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := ip[ipLen:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], 53)
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+n))
	return f
}

// arpFrame is a frame the data plane does not handle: ARP, padded to the
// minimum Ethernet payload.
func arpFrame() []byte {
	f := make([]byte, 60)
	copy(f[0:6], macGW[:])
	copy(f[6:12], macHost[:])
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	return f
}

// fakeSocket is a SocketStats with set statistics.
type fakeSocket struct {
	ifindex, queue int
	st             afxdp.Stats
	err            error
}

func (s *fakeSocket) Stats() (afxdp.Stats, error) { return s.st, s.err }
func (s *fakeSocket) Ifindex() int                { return s.ifindex }
func (s *fakeSocket) Queue() int                  { return s.queue }
