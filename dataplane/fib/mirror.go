package fib

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// DefaultReceiveBuffer is the receive buffer that Mirror asks for
	// its notification sockets unless told otherwise: room for a burst
	// of thousands of route changes before the kernel reports ENOBUFS
	// and the mirror has to dump again. Without
	// ReceiveBufferForce the kernel caps it at net.core.rmem_max.
	DefaultReceiveBuffer = 4 << 20

	// updateQueue is the capacity of the channels between the netlink
	// library's receiving goroutines and the mirror.
	updateQueue = 1024
	// maxBatch bounds the notifications applied between two publications,
	// so that a long burst still shows up in the table as it goes.
	maxBatch = 4096
	// refreshInterval is how often the mirror asks the kernel to confirm
	// the STALE neighbours that lookups used.
	refreshInterval = time.Second
	// netlinkTimeout bounds each dump and request, so that a kernel that
	// does not answer fails the session rather than hanging it.
	netlinkTimeout = 10 * time.Second
	// dumpRetries is how many times a dump interrupted by concurrent
	// changes (NLM_F_DUMP_INTR) is tried again.
	dumpRetries = 10
)

// ErrSubscription is wrapped by the errors Mirror reports when a netlink
// subscription ends, which makes it subscribe and dump again.
var ErrSubscription = errors.New("fib: netlink subscription ended")

// MirrorOptions configure Mirror. The zero value mirrors the main table of
// the calling thread's network namespace.
type MirrorOptions struct {
	// Namespace is the network namespace to mirror; nil means the one of
	// the thread that calls Mirror. Mirror does not close it.
	Namespace *netns.NsHandle
	// TableID is the routing table to mirror; 0 means the main table
	// (254), where the kernel and `ip route` put routes by default.
	TableID int
	// ReceiveBufferSize is the receive buffer of the notification
	// sockets; 0 means DefaultReceiveBuffer.
	ReceiveBufferSize int
	// ReceiveBufferForce sets the buffer size beyond net.core.rmem_max
	// (SO_RCVBUFFORCE, which needs CAP_NET_ADMIN).
	ReceiveBufferForce bool
	// OnError, if set, is told about the errors Mirror recovers from: a
	// subscription that ended (ENOBUFS when notifications overflowed the
	// socket, say) before it dumps again, messages the library could not
	// parse, and failed resolution requests. Calls are serialized.
	OnError func(error)
}

// Mirror keeps t a copy of the kernel's links, interface addresses,
// routes of one table and neighbours, until ctx is done; it then returns
// nil. It also passes [Table.Resolve]'s requests to the kernel.
//
// It subscribes to the kernel's notifications first and dumps the current
// state second, so that no change falls between the two: a change made
// during the dump is applied again after it, which leaves the same state.
// Notifications are applied in batches, each published as one new
// snapshot. When a subscription ends, typically with ENOBUFS because
// changes came faster than Mirror read them, it subscribes and dumps
// again, and carries on. It returns an error only if it cannot subscribe
// and dump the first time (no such namespace, no permission): after that
// it keeps trying, reporting errors to OnError.
//
// One Mirror feeds one Table, and nothing else writes to it meanwhile:
// Mirror keeps its own copy of the state and publishes all of it.
//
// Once a second, Mirror asks the kernel to confirm the STALE neighbours
// that lookups used since the last time, with the request Resolve sends:
// the kernel moves them to DELAY and PROBE and, on an answer, back to
// REACHABLE, exactly as it does for the neighbours its own packets use.
func Mirror(ctx context.Context, t *Table, opts MirrorOptions) error {
	if opts.TableID == 0 {
		opts.TableID = unix.RT_TABLE_MAIN
	}
	if opts.ReceiveBufferSize == 0 {
		opts.ReceiveBufferSize = DefaultReceiveBuffer
	}
	ns := opts.Namespace
	if ns == nil {
		cur, err := netns.Get()
		if err != nil {
			return fmt.Errorf("fib: network namespace of the calling thread: %w", err)
		}
		defer cur.Close()
		ns = &cur
		// In the process's own namespace (espxd's case: `ip netns exec`
		// moves the whole process) the sockets need no setns, which would
		// take CAP_SYS_ADMIN; only a thread moved on its own (as tests
		// move theirs) needs the sockets opened there.
		if proc, err := netns.GetFromPath("/proc/self/ns/net"); err == nil {
			if proc.Equal(cur) {
				ns = nil
			}
			proc.Close()
		}
	}
	var h *netlink.Handle
	var err error
	if ns == nil {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(*ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		return fmt.Errorf("fib: netlink socket: %w", err)
	}
	defer h.Close()
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		return fmt.Errorf("fib: netlink socket: %w", err)
	}
	m := &mirror{t: t, h: h, ns: ns, opts: opts, st: newState(opts.TableID)}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { m.resolver(ctx) })

	synced := false
	backoff := time.Duration(0)
	for {
		start := time.Now()
		err := m.session(ctx, &synced)
		if ctx.Err() != nil {
			return nil
		}
		if !synced {
			return err
		}
		m.report(err)
		// Resync at once after a session that ran a while (an overflow
		// under load); back off when sessions keep failing quickly.
		if time.Since(start) > 5*time.Second {
			backoff = 0
		} else {
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

type mirror struct {
	t *Table
	h *netlink.Handle
	// ns is where the subscriptions' sockets are opened; nil: the
	// process's own namespace, without setns.
	ns   *netns.NsHandle
	opts MirrorOptions
	st   *state

	reportMu sync.Mutex
}

func (m *mirror) report(err error) {
	if m.opts.OnError == nil || err == nil {
		return
	}
	m.reportMu.Lock()
	defer m.reportMu.Unlock()
	m.opts.OnError(err)
}

// resolver sends Resolve's requests to the kernel. NTF_USE in a
// RTM_NEWNEIGH request (NLM_F_CREATE) makes the kernel create the entry if
// needed and call neigh_event_send on it, as when it has a packet to send
// there: an INCOMPLETE or FAILED entry gets a solicitation (broadcast ARP
// request, multicast ND NS), a STALE one goes to DELAY and then a unicast
// probe. An answer makes it REACHABLE, which the neighbour subscription
// brings into the table. The tests watch the request leave and the
// answer arrive on a veth pair.
//
// Without a packet to take the source address from, IPv6 solicits from
// the interface's link-local address, and ndisc_send_ns sends nothing
// while that address is tentative (duplicate address detection, the first
// second or two after the link comes up). The kernel's retransmissions
// (every retrans_time) or the next Resolve then send it: resolution is
// delayed, not lost. IPv4 has no such window.
func (m *mirror) resolver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-m.t.resolve:
			err := m.h.NeighSet(&netlink.Neigh{
				LinkIndex: r.ifindex,
				IP:        r.addr.AsSlice(),
				Flags:     netlink.NTF_USE,
			})
			if err != nil {
				m.report(fmt.Errorf("fib: resolve %v on interface %d: %w", r.addr, r.ifindex, err))
			}
		}
	}
}

// session subscribes, dumps, and applies notifications until a
// subscription ends or ctx is done.
func (m *mirror) session(ctx context.Context, synced *bool) error {
	s := &session{
		links:  make(chan netlink.LinkUpdate, updateQueue),
		addrs:  make(chan netlink.AddrUpdate, updateQueue),
		routes: make(chan netlink.RouteUpdate, updateQueue),
		neighs: make(chan netlink.NeighUpdate, updateQueue),
		errs:   make(chan error, 16),
		done:   make(chan struct{}),
	}
	defer s.close()
	if err := s.subscribe(m); err != nil {
		return fmt.Errorf("fib: subscribe: %w", err)
	}
	if err := m.dump(true, true, true, true); err != nil {
		return err
	}
	m.st.publish(m.t)
	*synced = true

	tick := time.NewTicker(refreshInterval)
	defer tick.Stop()
	for {
		if _, err := s.next(ctx, m, tick.C, true); err != nil {
			return err
		}
		for range maxBatch {
			more, err := s.next(ctx, m, tick.C, false)
			if err != nil {
				return err
			}
			if !more {
				break
			}
		}
		if m.st.redumpRoutes || m.st.redumpNeigh {
			if err := m.dump(false, false, m.st.redumpRoutes, m.st.redumpNeigh); err != nil {
				return err
			}
		}
		if m.st.fwdDirty || m.st.neighDirty {
			m.st.publish(m.t)
		}
	}
}

// dump replaces the chosen parts of the state with the kernel's.
func (m *mirror) dump(links, addrs, routes, neighs bool) error {
	if links {
		ls, err := retryDump(func() ([]netlink.Link, error) { return m.h.LinkList() })
		if err != nil {
			return fmt.Errorf("fib: dump links: %w", err)
		}
		m.st.setLinks(ls)
	}
	if addrs {
		as, err := retryDump(func() ([]netlink.Addr, error) { return m.h.AddrList(nil, netlink.FAMILY_ALL) })
		if err != nil {
			return fmt.Errorf("fib: dump addresses: %w", err)
		}
		m.st.setAddrs(as)
	}
	if routes {
		rs, err := retryDump(func() ([]netlink.Route, error) {
			return m.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: m.opts.TableID}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return fmt.Errorf("fib: dump routes: %w", err)
		}
		m.st.setRoutes(rs)
		m.st.redumpRoutes = false
	}
	if neighs {
		ns, err := retryDump(func() ([]netlink.Neigh, error) { return m.h.NeighList(0, netlink.FAMILY_ALL) })
		if err != nil {
			return fmt.Errorf("fib: dump neighbours: %w", err)
		}
		m.st.setNeighbors(ns)
		m.st.redumpNeigh = false
	}
	return nil
}

// retryDump runs a dump again while the kernel says that changes
// interrupted it, which leaves its result possibly inconsistent.
func retryDump[T any](f func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if errors.Is(err, netlink.ErrDumpInterrupted) && i < dumpRetries {
			continue
		}
		return v, err
	}
}

// session is one set of subscriptions.
type session struct {
	links  chan netlink.LinkUpdate
	addrs  chan netlink.AddrUpdate
	routes chan netlink.RouteUpdate
	neighs chan netlink.NeighUpdate
	errs   chan error
	done   chan struct{}
	// lastErr is the last error the library reported, the likely
	// reason when a channel closes.
	lastErr error
	// drains are run when the session ends, one goroutine each, to read
	// the channels of the subscriptions that started until the library
	// closes them: its goroutines may be blocked sending to them and
	// would otherwise never see done.
	drains []func()
}

func drain[T any](c chan T) func() {
	return func() {
		for range c {
		}
	}
}

func (s *session) subscribe(m *mirror) error {
	cb := func(err error) {
		select {
		case s.errs <- err:
		default:
		}
	}
	o := m.opts
	if err := netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{
		Namespace: m.ns, ErrorCallback: cb,
		ReceiveBufferSize: o.ReceiveBufferSize, ReceiveBufferForceSize: o.ReceiveBufferForce,
	}); err != nil {
		return fmt.Errorf("links: %w", err)
	}
	s.drains = append(s.drains, drain(s.links))
	if err := netlink.AddrSubscribeWithOptions(s.addrs, s.done, netlink.AddrSubscribeOptions{
		Namespace: m.ns, ErrorCallback: cb,
		ReceiveBufferSize: o.ReceiveBufferSize, ReceiveBufferForceSize: o.ReceiveBufferForce,
	}); err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	s.drains = append(s.drains, drain(s.addrs))
	if err := netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{
		Namespace: m.ns, ErrorCallback: cb,
		ReceiveBufferSize: o.ReceiveBufferSize, ReceiveBufferForceSize: o.ReceiveBufferForce,
	}); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	s.drains = append(s.drains, drain(s.routes))
	if err := netlink.NeighSubscribeWithOptions(s.neighs, s.done, netlink.NeighSubscribeOptions{
		Namespace: m.ns, ErrorCallback: cb,
		ReceiveBufferSize: o.ReceiveBufferSize, ReceiveBufferForceSize: o.ReceiveBufferForce,
	}); err != nil {
		return fmt.Errorf("neighbours: %w", err)
	}
	s.drains = append(s.drains, drain(s.neighs))
	return nil
}

func (s *session) close() {
	close(s.done)
	for _, d := range s.drains {
		go d()
	}
}

// ended explains why a subscription's channel closed: the library reports
// the receive error through the error callback before closing it.
func (s *session) ended(what string) error {
	select {
	case err := <-s.errs:
		s.lastErr = err
	default:
	}
	if s.lastErr != nil {
		return fmt.Errorf("%w: %s: %w", ErrSubscription, what, s.lastErr)
	}
	return fmt.Errorf("%w: %s", ErrSubscription, what)
}

// next applies one notification, or refreshes the used STALE neighbours
// when tick fires. It waits for one if block is set, and otherwise returns
// false when there is none.
func (s *session) next(ctx context.Context, m *mirror, tick <-chan time.Time, block bool) (bool, error) {
	if !block {
		select {
		case u, ok := <-s.links:
			return s.link(m, u, ok)
		case u, ok := <-s.addrs:
			return s.addr(m, u, ok)
		case u, ok := <-s.routes:
			return s.route(m, u, ok)
		case u, ok := <-s.neighs:
			return s.neigh(m, u, ok)
		default:
			return false, ctx.Err()
		}
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case u, ok := <-s.links:
		return s.link(m, u, ok)
	case u, ok := <-s.addrs:
		return s.addr(m, u, ok)
	case u, ok := <-s.routes:
		return s.route(m, u, ok)
	case u, ok := <-s.neighs:
		return s.neigh(m, u, ok)
	case err := <-s.errs:
		// A message the library could not parse; the subscription
		// goes on. Fatal errors close a channel, handled above.
		s.lastErr = err
		m.report(err)
		return true, nil
	case <-tick:
		m.refresh()
		return true, nil
	}
}

func (s *session) link(m *mirror, u netlink.LinkUpdate, ok bool) (bool, error) {
	if !ok {
		return false, s.ended("links")
	}
	m.st.linkUpdate(u)
	return true, nil
}

func (s *session) addr(m *mirror, u netlink.AddrUpdate, ok bool) (bool, error) {
	if !ok {
		return false, s.ended("addresses")
	}
	m.st.addrUpdate(u)
	return true, nil
}

func (s *session) route(m *mirror, u netlink.RouteUpdate, ok bool) (bool, error) {
	if !ok {
		return false, s.ended("routes")
	}
	m.st.routeUpdate(u)
	return true, nil
}

func (s *session) neigh(m *mirror, u netlink.NeighUpdate, ok bool) (bool, error) {
	if !ok {
		return false, s.ended("neighbours")
	}
	m.st.neighUpdate(u)
	return true, nil
}

// refresh asks the kernel to confirm the STALE entries that lookups used.
func (m *mirror) refresh() {
	for k, e := range m.st.neigh {
		if e.state&nudStale != 0 && e.used.Load() {
			e.used.Store(false)
			m.t.Resolve(int(k.ifindex), e.addr)
		}
	}
}
