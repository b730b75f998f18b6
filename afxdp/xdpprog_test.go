package afxdp

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

const (
	verdictPass     = 2 // XDP_PASS
	verdictRedirect = 4 // XDP_REDIRECT
)

// xdpMd is struct xdp_md, the context BPF_PROG_RUN gives the program.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

var (
	gw4    = mustAddr("192.0.2.1")
	peer4  = mustAddr("192.0.2.2")
	far4   = mustAddr("198.51.100.7")
	gw6    = mustAddr("2001:db8::1")
	peer6  = mustAddr("2001:db8::2")
	far6   = mustAddr("2001:db8:1::7")
	mcast4 = mustAddr("224.0.0.5")
	bcast4 = mustAddr("255.255.255.255")
	llGW6  = mustAddr("fe80::1")
	nsMc6  = mustAddr("ff02::1:ff00:1")
)

type verdictCase struct {
	name  string
	frame []byte
	want  [2]uint32 // by Side: Unprotected, Protected
}

func verdictCases() []verdictCase {
	esp := espPayload(0x1001, 1, 32)
	ike := append([]byte{0, 0, 0, 0}, make([]byte, 28)...) // non-ESP marker then IKE header
	espUDP := append([]byte{0, 0, 0x10, 0x01}, esp[4:]...) // SPI first
	udpTo := func(dport uint16, p []byte) []byte { return udpDatagram(40000, dport, p) }
	R, P := uint32(verdictRedirect), uint32(verdictPass)
	frag := func(p []byte, fragField uint16) []byte {
		p[6], p[7] = byte(fragField>>8), byte(fragField)
		return p
	}
	tcpish := make([]byte, 20)
	ndNS := []byte{135, 0, 0, 0, 0, 0, 0, 0}
	echo6 := []byte{128, 0, 0, 0, 0, 1, 0, 1}
	return []verdictCase{
		{"arp", ethFrame(macA, macB, 0x0806, make([]byte, 28)), [2]uint32{P, P}},
		{"vlan", ethFrame(macA, macB, 0x8100, make([]byte, 60)), [2]uint32{P, P}},
		{"ethernet header only", ethFrame(macA, macB, 0x0800, nil), [2]uint32{P, P}},
		{"runt ipv4", ethIPv4(ipv4Packet(peer4, gw4, 50, nil, nil))[:30], [2]uint32{P, P}},
		{"ipv4 bad version", func() []byte { f := ethIPv4(ipv4Packet(peer4, far4, 6, nil, tcpish)); f[14] = 0x55; return f }(), [2]uint32{P, P}},
		{"ipv4 ihl<5", func() []byte { f := ethIPv4(ipv4Packet(peer4, far4, 6, nil, tcpish)); f[14] = 0x44; return f }(), [2]uint32{P, P}},
		{"esp to gw", ethIPv4(ipv4Packet(peer4, gw4, 50, nil, esp)), [2]uint32{R, P}},
		{"esp transit", ethIPv4(ipv4Packet(peer4, far4, 50, nil, esp)), [2]uint32{R, R}},
		{"esp with ip options", ethIPv4(ipv4Packet(peer4, gw4, 50, []byte{1, 1, 1, 0}, esp)), [2]uint32{R, P}},
		{"esp fragment", ethIPv4(frag(ipv4Packet(peer4, gw4, 50, nil, esp), 0x2000)), [2]uint32{P, P}},
		{"transit fragment", ethIPv4(frag(ipv4Packet(peer4, far4, 6, nil, tcpish), 0x0010)), [2]uint32{P, R}},
		{"ike 500", ethIPv4(ipv4Packet(peer4, gw4, 17, nil, udpTo(500, ike))), [2]uint32{P, P}},
		{"ike 500 transit", ethIPv4(ipv4Packet(peer4, far4, 17, nil, udpTo(500, ike))), [2]uint32{P, R}},
		{"ike 4500 marker", ethIPv4(ipv4Packet(peer4, gw4, 17, nil, udpTo(4500, ike))), [2]uint32{P, P}},
		{"ike 4500 marker, ip options", ethIPv4(ipv4Packet(peer4, gw4, 17, []byte{1, 1, 1, 0, 1, 1, 1, 0}, udpTo(4500, ike))), [2]uint32{P, P}},
		{"natt keepalive", ethIPv4(ipv4Packet(peer4, gw4, 17, nil, udpTo(4500, []byte{0xff}))), [2]uint32{P, P}},
		{"esp in udp", ethIPv4(ipv4Packet(peer4, gw4, 17, nil, udpTo(4500, espUDP))), [2]uint32{R, P}},
		{"esp in udp, ip options", ethIPv4(ipv4Packet(peer4, gw4, 17, []byte{1, 1, 1, 0}, udpTo(4500, espUDP))), [2]uint32{R, P}},
		{"esp in udp transit", ethIPv4(ipv4Packet(peer4, far4, 17, nil, udpTo(4500, espUDP))), [2]uint32{R, R}},
		{"udp runt header", ethIPv4(ipv4Packet(peer4, gw4, 17, nil, []byte{0x11, 0x94, 0x11})), [2]uint32{P, P}},
		{"other udp to gw", ethIPv4(ipv4Packet(peer4, gw4, 17, nil, udpTo(53, esp))), [2]uint32{P, P}},
		{"other udp transit", ethIPv4(ipv4Packet(peer4, far4, 17, nil, udpTo(53, esp))), [2]uint32{R, R}},
		{"tcp to gw", ethIPv4(ipv4Packet(peer4, gw4, 6, nil, tcpish)), [2]uint32{P, P}},
		{"icmp to gw", ethIPv4(ipv4Packet(peer4, gw4, 1, nil, tcpish)), [2]uint32{P, P}},
		{"tcp transit", ethIPv4(ipv4Packet(peer4, far4, 6, nil, tcpish)), [2]uint32{R, R}},
		{"multicast", ethIPv4(ipv4Packet(peer4, mcast4, 89, nil, tcpish)), [2]uint32{P, P}},
		{"broadcast", ethIPv4(ipv4Packet(peer4, bcast4, 17, nil, udpTo(67, tcpish))), [2]uint32{P, P}},

		{"v6 runt", ethIPv6(ipv6Packet(peer6, gw6, 50, nil))[:50], [2]uint32{P, P}},
		{"v6 esp to gw", ethIPv6(ipv6Packet(peer6, gw6, 50, esp)), [2]uint32{R, P}},
		{"v6 esp transit", ethIPv6(ipv6Packet(peer6, far6, 50, esp)), [2]uint32{R, R}},
		{"v6 ike 500", ethIPv6(ipv6Packet(peer6, gw6, 17, udpTo(500, ike))), [2]uint32{P, P}},
		{"v6 ike 4500 marker", ethIPv6(ipv6Packet(peer6, gw6, 17, udpTo(4500, ike))), [2]uint32{P, P}},
		{"v6 esp in udp", ethIPv6(ipv6Packet(peer6, gw6, 17, udpTo(4500, espUDP))), [2]uint32{R, P}},
		{"v6 other udp to gw", ethIPv6(ipv6Packet(peer6, gw6, 17, udpTo(53, esp))), [2]uint32{P, P}},
		{"v6 tcp transit", ethIPv6(ipv6Packet(peer6, far6, 6, tcpish)), [2]uint32{R, R}},
		{"v6 fragment to gw", ethIPv6(ipv6Packet(peer6, gw6, 44, esp)), [2]uint32{P, P}},
		{"v6 neighbour solicitation", ethIPv6(ipv6Packet(peer6, nsMc6, 58, ndNS)), [2]uint32{P, P}},
		{"v6 unicast NS (NUD)", ethIPv6(ipv6Packet(peer6, far6, 58, ndNS)), [2]uint32{P, P}},
		{"v6 echo to gw", ethIPv6(ipv6Packet(peer6, gw6, 58, echo6)), [2]uint32{P, P}},
		{"v6 echo transit", ethIPv6(ipv6Packet(peer6, far6, 58, echo6)), [2]uint32{R, R}},
		{"v6 icmp runt", ethIPv6(ipv6Packet(peer6, far6, 58, nil)), [2]uint32{P, P}},
		{"v6 link-local dst", ethIPv6(ipv6Packet(peer6, llGW6, 6, tcpish)), [2]uint32{P, P}},
	}
}

// TestProgramVerdicts runs both program variants over a table of packets
// with BPF_PROG_RUN, with a socket in the map for queue 0.
func TestProgramVerdicts(t *testing.T) {
	requireNetns(t)
	gw, peer := newNetns(t), newNetns(t)
	veth(t, gw, "g0", peer, "p0", 2)
	ifindex := gw.ifindex(t, "g0")
	u := newTestUMEM(t, UMEMConfig{NumFrames: 64})
	s := openSocket(t, gw, u, ifindex, 0, SocketConfig{FillSize: 32, CompletionSize: 32, RxSize: 32, TxSize: 32})

	for _, side := range []Side{Unprotected, Protected} {
		t.Run(side.String(), func(t *testing.T) {
			p := newTestProgram(t, side)
			for _, a := range []netip.Addr{gw4, gw6} {
				if err := p.AddAddress(a); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.SetSocket(s); err != nil {
				t.Fatal(err)
			}
			// BPF_PROG_RUN with a queue index needs the device's XDP queue
			// info, which veth registers only while a program is attached.
			gw.must(t, func() error { _, err := p.Attach(ifindex); return err })
			runProg := func(frame []byte, queue uint32) uint32 {
				var ret uint32
				gw.must(t, func() error {
					var err error
					ret, err = p.EBPF().Run(&ebpf.RunOptions{
						Data:    frame,
						Context: &xdpMd{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex), RxQueueIndex: queue},
					})
					if err != nil {
						return fmt.Errorf("run program on %d bytes: %w", len(frame), err)
					}
					return nil
				})
				return ret
			}
			for _, c := range verdictCases() {
				if got, want := runProg(c.frame, 0), c.want[side]; got != want {
					t.Errorf("%s: verdict %d, want %d", c.name, got, want)
				}
			}

			// Queue 1 has no socket: what would go to a socket passes.
			transit := ethIPv4(ipv4Packet(peer4, far4, 50, nil, espPayload(1, 1, 16)))
			if got := runProg(transit, 1); got != verdictPass {
				t.Errorf("queue without socket: verdict %d, want pass", got)
			}
			// Updates apply while loaded: forget the address, then the
			// socket.
			tcpToGW := ethIPv4(ipv4Packet(peer4, gw4, 6, nil, make([]byte, 20)))
			if err := p.DeleteAddress(gw4); err != nil {
				t.Fatal(err)
			}
			if got := runProg(tcpToGW, 0); got != verdictRedirect {
				t.Errorf("after DeleteAddress: verdict %d, want redirect", got)
			}
			if err := p.ClearSocket(0); err != nil {
				t.Fatal(err)
			}
			if got := runProg(transit, 0); got != verdictPass {
				t.Errorf("after ClearSocket: verdict %d, want pass", got)
			}
		})
	}
}

// newTestProgram loads a program that is closed when the test ends; mode
// forces an attach mode (0: native, else generic).
func newTestProgram(t testing.TB, side Side, mode ...AttachMode) *Program {
	t.Helper()
	cfg := ProgramConfig{Side: side, MaxQueues: 16}
	if len(mode) > 0 {
		cfg.Mode = mode[0]
	}
	p, err := NewProgram(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// newTestUMEM makes a UMEM that is closed when the test ends, after the
// sockets on it (cleanups run last-in first-out).
func newTestUMEM(t testing.TB, cfg UMEMConfig) *UMEM {
	t.Helper()
	u, err := NewUMEM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Error(err)
		}
	})
	return u
}

// openSocket opens a socket inside namespace n, closed when the test ends.
func openSocket(t testing.TB, n *netns, u *UMEM, ifindex, queue int, cfg SocketConfig) *Socket {
	t.Helper()
	var s *Socket
	n.must(t, func() error {
		var err error
		s, err = NewSocket(u, ifindex, queue, cfg)
		return err
	})
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}
