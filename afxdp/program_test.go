package afxdp

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gatewayTopology is a gateway namespace with device g0 (192.0.2.1,
// 2001:db8::1) and a peer namespace with p0 (192.0.2.2, 2001:db8::2), one
// queue each, the program of side attached to g0 with the gateway's
// addresses, and a socket on queue 0.
type gatewayTopology struct {
	gw, peer *netns
	u        *UMEM
	p        *Program
	s        *Socket
}

func newGatewayTopology(t *testing.T, side Side, mode ...AttachMode) *gatewayTopology {
	t.Helper()
	g := &gatewayTopology{gw: newNetns(t), peer: newNetns(t)}
	veth(t, g.gw, "g0", g.peer, "p0", 1)
	g.gw.ip(t, "addr", "add", "192.0.2.1/24", "dev", "g0")
	g.gw.ip(t, "addr", "add", "2001:db8::1/64", "dev", "g0", "nodad")
	g.peer.ip(t, "addr", "add", "192.0.2.2/24", "dev", "p0")
	g.peer.ip(t, "addr", "add", "2001:db8::2/64", "dev", "p0", "nodad")
	g.u = newTestUMEM(t, UMEMConfig{NumFrames: 512})
	g.p = newTestProgram(t, side, mode...)
	for _, a := range []netip.Addr{gw4, gw6} {
		if err := g.p.AddAddress(a); err != nil {
			t.Fatal(err)
		}
	}
	if got := attach(t, g.gw, g.p, "g0"); len(mode) > 0 && got != mode[0] {
		t.Fatalf("attached in %v mode, asked for %v", got, mode[0])
	}
	g.s = openSocket(t, g.gw, g.u, g.gw.ifindex(t, "g0"), 0, SocketConfig{FillSize: 256, CompletionSize: 256, RxSize: 256, TxSize: 256})
	g.s.Refill()
	if err := g.p.SetSocket(g.s); err != nil {
		t.Fatal(err)
	}
	return g
}

// listenUDP opens kernel UDP sockets on port in the gateway namespace, for
// IPv4 and IPv6.
func (g *gatewayTopology) listenUDP(t *testing.T, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	g.gw.must(t, func() error {
		var err error
		c, err = net.ListenUDP("udp", &net.UDPAddr{Port: port})
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll returns the payloads c receives until it is quiet for 300 ms.
func readAll(c *net.UDPConn) []string {
	var got []string
	buf := make([]byte, 2048)
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return got
		}
		got = append(got, string(buf[:n]))
	}
}

// socketPayloads returns what follows the headers (Ethernet, IP, and UDP
// when proto is UDP) in every frame the socket receives until it is quiet
// for 300 ms.
func (g *gatewayTopology) socketPayloads() []string {
	var got []string
	descs := make([]Desc, 64)
	for quiet := time.Now().Add(300 * time.Millisecond); time.Now().Before(quiet); {
		n := g.s.Receive(descs)
		for _, d := range descs[:n] {
			quiet = time.Now().Add(300 * time.Millisecond)
			f := g.u.Data(d)
			var l4 []byte
			var proto byte
			switch {
			case len(f) >= 34 && f[12] == 0x08 && f[13] == 0:
				proto, l4 = f[23], f[14+int(f[14]&0xf)*4:]
			case len(f) >= 54 && f[12] == 0x86 && f[13] == 0xdd:
				proto, l4 = f[20], f[54:]
			default:
				got = append(got, "non-IP frame")
				continue
			}
			if proto == unix.IPPROTO_UDP && len(l4) >= 8 {
				l4 = l4[8:]
			}
			got = append(got, string(l4))
		}
		g.s.Recycle(descs[:n])
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return got
}

// sendUDP sends payload from the peer to dst:port.
func (g *gatewayTopology) sendUDP(t *testing.T, dst netip.Addr, port int, payload []byte) {
	t.Helper()
	g.peer.must(t, func() error {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(port))))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
}

// sendRawESP sends an IP packet of protocol 50 from the peer.
func (g *gatewayTopology) sendRawESP(t *testing.T, dst netip.Addr, payload []byte) {
	t.Helper()
	g.peer.must(t, func() error {
		family := unix.AF_INET6
		var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: dst.As16()}
		if dst.Is4() {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: dst.As4()}
		}
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ESP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, payload, 0, sa)
	})
}

func sameSet(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	m := map[string]int{}
	for _, s := range want {
		m[s]++
	}
	for _, s := range got {
		if m[s] == 0 {
			return false
		}
		m[s]--
	}
	return true
}

// TestUnprotectedSplit checks the unprotected side on a live device: IKE
// on 500 and 4500 (zero marker) and NAT-T keepalives reach kernel UDP
// sockets, ESP and ESP in UDP reach the AF_XDP socket, and ARP, neighbour
// discovery and ping to the gateway keep working while the program is
// attached.
//
// It runs in native and in generic XDP mode, the fallback for drivers
// without XDP support.
func TestUnprotectedSplit(t *testing.T) {
	for _, mode := range []AttachMode{AttachNative, AttachGeneric} {
		t.Run(mode.String(), func(t *testing.T) { testUnprotectedSplit(t, mode) })
	}
}

func testUnprotectedSplit(t *testing.T, mode AttachMode) {
	requireNetns(t)
	g := newGatewayTopology(t, Unprotected, mode)
	ike500, ike4500 := g.listenUDP(t, 500), g.listenUDP(t, 4500)

	marker := []byte{0, 0, 0, 0}
	var wantIKE500, wantIKE4500, wantXSK []string
	for _, dst := range []netip.Addr{gw4, gw6} {
		fam := "v4"
		if dst.Is6() {
			fam = "v6"
		}
		p := []byte("IKE_SA_INIT on 500 " + fam)
		g.sendUDP(t, dst, 500, p)
		wantIKE500 = append(wantIKE500, string(p))

		p = append(append([]byte{}, marker...), "IKE_AUTH on 4500 "+fam...)
		g.sendUDP(t, dst, 4500, p)
		wantIKE4500 = append(wantIKE4500, string(p))

		g.sendUDP(t, dst, 4500, []byte{0xff}) // NAT-T keepalive
		wantIKE4500 = append(wantIKE4500, "\xff")

		p = append([]byte{0, 0, 0x12, 0x34, 0, 0, 0, 1}, "ESP in UDP "+fam...)
		g.sendUDP(t, dst, 4500, p)
		wantXSK = append(wantXSK, string(p))

		p = append([]byte{0, 0, 0x56, 0x78, 0, 0, 0, 1}, "ESP "+fam...)
		g.sendRawESP(t, dst, p)
		wantXSK = append(wantXSK, string(p))
	}
	if got := readAll(ike500); !sameSet(got, wantIKE500) {
		t.Errorf("kernel socket on 500 got %q, want %q", got, wantIKE500)
	}
	if got := readAll(ike4500); !sameSet(got, wantIKE4500) {
		t.Errorf("kernel socket on 4500 got %q, want %q", got, wantIKE4500)
	}
	if got := g.socketPayloads(); !sameSet(got, wantXSK) {
		t.Errorf("AF_XDP socket got %q, want %q", got, wantXSK)
	}
	for _, dst := range []netip.Addr{gw4, gw6} {
		if err := g.peer.ping(dst); err != nil {
			t.Errorf("with the program attached: %v", err)
		}
	}
	if out := g.peer.ip(t, "neigh", "show", "dev", "p0"); !strings.Contains(out, "192.0.2.1") || !strings.Contains(out, "2001:db8::1") {
		t.Errorf("peer's neighbour table lacks the gateway:\n%s", out)
	}
}

// TestProtectedSplit checks the protected side on a live device: transit
// traffic reaches the AF_XDP socket, traffic to the gateway the kernel,
// and ping works.
func TestProtectedSplit(t *testing.T) {
	requireNetns(t)
	g := newGatewayTopology(t, Protected)
	g.peer.ip(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.1")
	g.peer.ip(t, "-6", "route", "add", "2001:db8:1::/48", "via", "2001:db8::1")
	local := g.listenUDP(t, 9)

	var wantLocal, wantXSK []string
	for _, c := range []struct {
		dst     netip.Addr
		payload string
		local   bool
	}{
		{gw4, "to the gateway v4", true},
		{gw6, "to the gateway v6", true},
		{far4, "transit v4", false},
		{far6, "transit v6", false},
	} {
		g.sendUDP(t, c.dst, 9, []byte(c.payload))
		if c.local {
			wantLocal = append(wantLocal, c.payload)
		} else {
			wantXSK = append(wantXSK, c.payload)
		}
	}
	if got := readAll(local); !sameSet(got, wantLocal) {
		t.Errorf("kernel socket got %q, want %q", got, wantLocal)
	}
	if got := g.socketPayloads(); !sameSet(got, wantXSK) {
		t.Errorf("AF_XDP socket got %q, want %q", got, wantXSK)
	}
	for _, dst := range []netip.Addr{gw4, gw6} {
		if err := g.peer.ping(dst); err != nil {
			t.Errorf("with the program attached: %v", err)
		}
	}
}
