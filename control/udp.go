package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// UDPTransport carries the daemon's IKE datagrams on real sockets: ports
// 500 and 4500 of each local address. It reads on one goroutine per socket
// and hands what it reads to the daemon.
type UDPTransport struct {
	conns   map[netip.AddrPort]*net.UDPConn
	wg      sync.WaitGroup
	once    sync.Once
	handler atomic.Pointer[Daemon]
}

// ListenUDP binds ports 500 and 4500 on each address.
func ListenUDP(addrs []netip.Addr) (*UDPTransport, error) {
	t := &UDPTransport{conns: map[netip.AddrPort]*net.UDPConn{}}
	for _, a := range addrs {
		for _, port := range []uint16{500, PortNATT} {
			ap := netip.AddrPortFrom(a, port)
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
			if err != nil {
				t.Close()
				return nil, fmt.Errorf("IKE socket %v: %w", ap, err)
			}
			t.conns[ap] = c
		}
	}
	return t, nil
}

// Serve delivers what the sockets read to d, from now on; the first call
// starts the readers.
func (t *UDPTransport) Serve(d *Daemon) {
	t.handler.Store(d)
	t.once.Do(t.start)
}

func (t *UDPTransport) start() {
	for ap, c := range t.conns {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			buf := make([]byte, MaxMessageLen)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				t.handler.Load().Receive(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), ap)
			}
		}()
	}
}

// Send writes b from the socket bound to from.
func (t *UDPTransport) Send(b []byte, from, to netip.AddrPort) error {
	c, ok := t.conns[from]
	if !ok {
		return fmt.Errorf("no IKE socket on %v", from)
	}
	_, err := c.WriteToUDPAddrPort(b, to)
	return err
}

// Close closes the sockets and waits for the readers to stop.
func (t *UDPTransport) Close() {
	for _, c := range t.conns {
		c.Close()
	}
	t.wg.Wait()
}
