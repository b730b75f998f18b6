package afxdp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/espx/espx/internal/netnstest"
)

// Helpers for tests that need root: network namespaces and veth pairs that
// each test creates and removes, and a way to run Go code inside a
// namespace. Only documentation addresses are used.

// requireNetns skips the test, with the reason, unless it runs as root on
// a kernel with network namespaces, veth and AF_XDP.
func requireNetns(t testing.TB) {
	t.Helper()
	netnstest.Require(t)
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skip("kernel without AF_XDP sockets: ", err)
	}
	unix.Close(fd)
}

// netns is a network namespace created by a test.
type netns struct {
	name string
	ns   *netnstest.NS
}

// newNetns creates a namespace with a unique name, brings its loopback up,
// and removes it (with every device in it) when the test ends.
func newNetns(t testing.TB) *netns {
	t.Helper()
	ns := netnstest.New(t, "espx-afxdp")
	return &netns{name: ns.Name, ns: ns}
}

// ip runs ip(8) in the namespace.
func (n *netns) ip(t testing.TB, args ...string) string {
	t.Helper()
	return n.ns.IP(t, args...)
}

// do runs fn on an OS thread that has entered the namespace.
func (n *netns) do(fn func() error) error { return n.ns.Do(fn) }

// must runs fn in the namespace and fails the test on error.
func (n *netns) must(t testing.TB, fn func() error) {
	t.Helper()
	if err := n.do(fn); err != nil {
		t.Fatal(err)
	}
}

// ifindex looks a device up in the namespace.
func (n *netns) ifindex(t testing.TB, name string) int {
	t.Helper()
	var idx int
	n.must(t, func() error {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		idx = ifc.Index
		return nil
	})
	return idx
}

// mac returns a device's hardware address.
func (n *netns) mac(t testing.TB, name string) net.HardwareAddr {
	t.Helper()
	var hw net.HardwareAddr
	n.must(t, func() error {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		hw = ifc.HardwareAddr
		return nil
	})
	return hw
}

// veth creates a veth pair with queues RX and TX queues on each end, a in
// namespace na and b in nb, both up. The pair goes away with the
// namespaces.
func veth(t testing.TB, na *netns, a string, nb *netns, b string, queues int) {
	t.Helper()
	netnstest.VethQueues(t, na.ns, a, nb.ns, b, queues)
}

// xdpProgID returns the id of the XDP program attached to dev, 0 if none.
func (n *netns) xdpProgID(t testing.TB, dev string) int {
	t.Helper()
	out := n.ip(t, "-j", "-d", "link", "show", "dev", dev)
	var links []struct {
		XDP *struct {
			Prog *struct {
				ID int `json:"id"`
			} `json:"prog"`
			Attached []struct {
				Prog *struct {
					ID int `json:"id"`
				} `json:"prog"`
			} `json:"attached"`
		} `json:"xdp"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("parse ip link output %q: %v", out, err)
	}
	x := links[0].XDP
	switch {
	case x == nil:
		return 0
	case x.Prog != nil:
		return x.Prog.ID
	case len(x.Attached) > 0 && x.Attached[0].Prog != nil:
		return x.Attached[0].Prog.ID
	}
	return -1 // attached, shape not understood
}

// linkStats returns a device's counters from ip -s.
func (n *netns) linkStats(t testing.TB, dev string) (rx, tx struct{ Packets, Dropped uint64 }) {
	t.Helper()
	out := n.ip(t, "-j", "-s", "link", "show", "dev", dev)
	var links []struct {
		Stats64 struct {
			Rx struct{ Packets, Dropped uint64 } `json:"rx"`
			Tx struct{ Packets, Dropped uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("parse ip -s link output %q: %v", out, err)
	}
	return links[0].Stats64.Rx, links[0].Stats64.Tx
}

// packetSocket is a raw AF_PACKET socket on one device, for sending and
// capturing whole Ethernet frames.
type packetSocket struct {
	fd      int
	ifindex int
}

func openPacketSocket(t testing.TB, n *netns, dev string) *packetSocket {
	t.Helper()
	p := &packetSocket{}
	n.must(t, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		p.ifindex = ifc.Index
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		p.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		// Room for every frame a test captures before it reads them.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.Timeval{Usec: 100_000}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	t.Cleanup(func() { unix.Close(p.fd) })
	return p
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// send sends one frame, retrying briefly when the device queue is full.
func (p *packetSocket) send(frame []byte) error {
	for range 1000 {
		err := unix.Sendto(p.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: p.ifindex})
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
	return unix.ENOBUFS
}

// recv returns the next frame, or nil after the receive timeout (100 ms).
// Frames the socket itself sent are skipped.
func (p *packetSocket) recv(buf []byte) []byte {
	for {
		n, from, err := unix.Recvfrom(p.fd, buf, 0)
		if err != nil {
			return nil
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		return buf[:n]
	}
}

// ping sends one ICMP echo request to dst from inside namespace n and
// waits up to a second for the reply (raw sockets: the machines have no
// ping binary).
func (n *netns) ping(dst netip.Addr) error {
	return n.do(func() error {
		family, proto, reqType, replyType := unix.AF_INET, unix.IPPROTO_ICMP, byte(8), byte(0)
		if dst.Is6() {
			family, proto, reqType, replyType = unix.AF_INET6, unix.IPPROTO_ICMPV6, 128, 129
		}
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		id := uint16(os.Getpid())
		msg := []byte{reqType, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'e', 's', 'p', 'x'}
		if !dst.Is6() { // the kernel fills in ICMPv6 checksums only
			var sum uint32
			for i := 0; i < len(msg); i += 2 {
				sum += uint32(msg[i])<<8 | uint32(msg[i+1])
			}
			sum = sum&0xffff + sum>>16
			sum = sum&0xffff + sum>>16
			msg[2], msg[3] = byte(^sum>>8), byte(^sum)
		}
		var sa unix.Sockaddr
		if dst.Is6() {
			sa = &unix.SockaddrInet6{Addr: dst.As16()}
		} else {
			sa = &unix.SockaddrInet4{Addr: dst.As4()}
		}
		if err := unix.Sendto(fd, msg, 0, sa); err != nil {
			return fmt.Errorf("ping %s: %w", dst, err)
		}
		buf := make([]byte, 1500)
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
			m, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			icmp := buf[:m]
			if !dst.Is6() && m > 20 {
				icmp = buf[int(buf[0]&0xf)*4 : m]
			}
			if len(icmp) >= 8 && icmp[0] == replyType && icmp[4] == byte(id>>8) && icmp[5] == byte(id) {
				return nil
			}
		}
		return fmt.Errorf("ping %s: no reply", dst)
	})
}
