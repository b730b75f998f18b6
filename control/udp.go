package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
)

// UDPTransport carries the daemon's IKE datagrams on real sockets: ports
// 500 and 4500 of each local address. One goroutine per socket reads;
// a pool of one handler per CPU processes, each message going to the
// handler its initiator SPI hashes to, so that the key exchanges of many
// IKE_SA_INITs run on all cores while the messages of one IKE SA keep
// their order. A message that finds its handler's queue full is dropped
// and counted (the peer retransmits).
type UDPTransport struct {
	conns   map[netip.AddrPort]*net.UDPConn
	wg      sync.WaitGroup
	once    sync.Once
	handler atomic.Pointer[Daemon]
	queues  []chan datagramIn
	// Overflows counts messages dropped because their handler was busy.
	Overflows atomic.Uint64
}

type datagramIn struct {
	b        []byte
	from, to netip.AddrPort
}

// Socket sizes: a burst of IKE_SA_INITs from many initiators must not
// overflow the kernel's queue while the handlers work.
const (
	udpReadBuffer = 4 << 20
	handlerQueue  = 1024
)

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
			// Best effort: the kernel caps it at net.core.rmem_max.
			_ = c.SetReadBuffer(udpReadBuffer)
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
	t.queues = make([]chan datagramIn, runtime.GOMAXPROCS(0))
	var handlers sync.WaitGroup
	for i := range t.queues {
		q := make(chan datagramIn, handlerQueue)
		t.queues[i] = q
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			for d := range q {
				t.handler.Load().Receive(d.b, d.from, d.to)
			}
		}()
	}
	var readers sync.WaitGroup
	for ap, c := range t.conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, MaxMessageLen)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				d := datagramIn{append([]byte(nil), buf[:n]...), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), ap}
				select {
				case t.queues[spiHash(d.b, ap.Port())%uint64(len(t.queues))] <- d:
				default:
					t.Overflows.Add(1)
				}
			}
		}()
	}
	// Close waits for the readers, then the handlers drain and stop.
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		readers.Wait()
		for _, q := range t.queues {
			close(q)
		}
		handlers.Wait()
	}()
}

// spiHash picks a message's handler from its initiator SPI, the first
// eight bytes of the IKE header (behind the four-byte non-ESP marker on
// port 4500): every message of one IKE SA goes to one handler.
func spiHash(b []byte, port uint16) uint64 {
	if port == PortNATT && len(b) >= 4 {
		b = b[4:]
	}
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b) * 0x9e3779b97f4a7c15 >> 32
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
