package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/espx/espx/afxdp"
	"github.com/espx/espx/dataplane/fib"
)

// GatewayConfig says which interfaces a gateway serves and how.
type GatewayConfig struct {
	// Protected faces the networks the gateway protects; Unprotected
	// faces the peers.
	Protected, Unprotected string
	// Queues is how many queues (and workers) to use, from queue 0; 0
	// means every queue both devices have.
	Queues int
	// CPUs pin worker i to CPUs[i % len(CPUs)]; empty leaves them
	// unpinned.
	CPUs []int
	// AttachMode forces native or generic XDP; 0 tries native first.
	AttachMode afxdp.AttachMode
	// BindMode chooses zero-copy or copy mode; BindAuto tries zero-copy.
	BindMode afxdp.BindMode
	// Frames per worker and their size; 0 means 8192 and 2048.
	Frames, FrameSize int
	Log               *slog.Logger
}

// Gateway is a running data plane on two interfaces: the XDP programs,
// one UMEM and two sockets (one per interface) per queue, a worker per
// queue, and the mirror of the kernel's routes and neighbours that the
// workers route by.
type Gateway struct {
	dp     *Dataplane
	log    *slog.Logger
	FIB    *fib.Table
	progs  [2]*afxdp.Program
	ifidx  [2]int
	umems  []*afxdp.UMEM
	socks  [][2]*afxdp.Socket
	modes  [2]afxdp.AttachMode
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
	owned  map[netip.Addr]bool // addresses in the XDP programs' maps
}

// fibRouter routes by the kernel's tables as fib mirrors them.
type fibRouter struct{ t *fib.Table }

func (r fibRouter) Route(dst netip.Addr, nh *NextHop) RouteResult {
	var f fib.NextHop
	res := r.t.Lookup(dst, &f)
	*nh = NextHop{Ifindex: f.Ifindex, Addr: f.Addr, SrcMAC: f.SrcMAC, DstMAC: f.DstMAC, MTU: f.MTU}
	switch res {
	case fib.OK:
		return RouteOK
	case fib.Unresolved:
		return RouteUnresolved
	}
	return RouteNone
}

func (r fibRouter) Resolve(ifindex int, addr netip.Addr) { r.t.Resolve(ifindex, addr) }

func (r fibRouter) Source(ifindex int, v6 bool) netip.Addr {
	for _, p := range r.t.Addrs(ifindex) {
		if a := p.Addr(); a.Is6() == v6 && !a.IsLinkLocalUnicast() {
			return a
		}
	}
	return netip.Addr{}
}

// Start brings the data plane up on the interfaces of cfg, in the network
// namespace of the calling thread, and runs it until ctx is done or Close
// is called. It returns once every worker runs; on error nothing is left
// attached or open.
func (dp *Dataplane) Start(ctx context.Context, cfg GatewayConfig) (_ *Gateway, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Frames == 0 {
		cfg.Frames = 8192
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = 2048
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &Gateway{dp: dp, log: cfg.Log, FIB: fib.New(), cancel: cancel, owned: map[netip.Addr]bool{}}
	defer func() {
		// Every error return leaves nothing attached or open.
		if err != nil {
			g.Close()
		}
	}()
	names := [2]string{cfg.Protected, cfg.Unprotected}
	queues := 1 << 30
	for side, name := range names {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("%s interface %q: %w", sideName(side), name, err)
		}
		g.ifidx[side] = ifi.Index
		n, err := afxdp.QueueCount(name)
		if err != nil {
			return nil, fmt.Errorf("queues of %s: %w", name, err)
		}
		queues = min(queues, n)
	}
	if cfg.Queues > 0 {
		queues = min(queues, cfg.Queues)
	}

	// The routes and neighbours first: workers need them from the first
	// packet on.
	g.wg.Add(1)
	mirrorErr := make(chan error, 1)
	go func() {
		defer g.wg.Done()
		err := fib.Mirror(ctx, g.FIB, fib.MirrorOptions{OnError: func(err error) { cfg.Log.Warn("fib mirror", "err", err) }})
		if err != nil {
			err = fmt.Errorf("fib mirror: %w", err)
			mirrorErr <- err
			g.fail(err)
		}
	}()
	select {
	case <-g.FIB.Ready():
	case err := <-mirrorErr:
		return nil, err
	case <-time.After(5 * time.Second):
		return nil, errors.New("fib mirror: no first dump within 5 s")
	}

	sides := [2]afxdp.Side{afxdp.Protected, afxdp.Unprotected}
	for side := range names {
		p, err := afxdp.NewProgram(afxdp.ProgramConfig{Side: sides[side], Mode: cfg.AttachMode})
		if err != nil {
			return nil, err
		}
		g.progs[side] = p
	}
	g.syncAddrs()
	router := fibRouter{g.FIB}
	for q := range queues {
		u, err := afxdp.NewUMEM(afxdp.UMEMConfig{FrameSize: cfg.FrameSize, NumFrames: cfg.Frames})
		if err != nil {
			return nil, err
		}
		g.umems = append(g.umems, u)
		var socks [2]*afxdp.Socket
		for side := range names {
			s, err := afxdp.NewSocket(u, g.ifidx[side], q, afxdp.SocketConfig{Mode: cfg.BindMode})
			if err != nil {
				return nil, fmt.Errorf("%s queue %d: %w", names[side], q, err)
			}
			socks[side] = s
			s.Refill()
		}
		g.socks = append(g.socks, socks)
		cpu := -1
		if len(cfg.CPUs) > 0 {
			cpu = cfg.CPUs[q%len(cfg.CPUs)]
		}
		if _, err := dp.AddWorker(WorkerConfig{Protected: socks[0], Unprotected: socks[1], Mem: u, Router: router, CPU: cpu}); err != nil {
			return nil, err
		}
	}
	// Sockets before the programs: a queue whose socket is not in the map
	// yet passes to the kernel, so the order only decides whether the
	// first packets meet the kernel or a worker.
	for _, socks := range g.socks {
		for side := range socks {
			if err := g.progs[side].SetSocket(socks[side]); err != nil {
				return nil, err
			}
		}
	}
	for side := range names {
		m, err := g.progs[side].Attach(g.ifidx[side])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names[side], err)
		}
		g.modes[side] = m
	}
	for _, w := range dp.Workers() {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := w.Run(ctx); err != nil {
				g.fail(err)
			}
		}()
	}
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		dp.Run(ctx)
	}()
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				g.syncAddrs()
			}
		}
	}()
	for side, name := range names {
		zc := len(g.socks) > 0 && g.socks[0][side].ZeroCopy()
		cfg.Log.Info("interface up", "side", sideName(side), "name", name, "ifindex", g.ifidx[side],
			"queues", queues, "xdp", g.modes[side].String(), "zerocopy", zc)
	}
	return g, nil
}

func sideName(side int) string {
	if side == Protected {
		return "protected"
	}
	return "unprotected"
}

func (g *Gateway) fail(err error) {
	g.errMu.Lock()
	if g.err == nil {
		g.err = err
		g.log.Error("data plane stopped", "err", err)
	}
	g.errMu.Unlock()
	g.cancel()
}

// syncAddrs puts every address of this namespace's interfaces into both
// XDP programs, so that traffic to the gateway itself goes to the kernel,
// and takes out the ones that went away.
func (g *Gateway) syncAddrs() {
	want := map[netip.Addr]bool{}
	for _, l := range g.FIB.Links() {
		for _, p := range g.FIB.Addrs(l.Index) {
			want[p.Addr()] = true
		}
	}
	for a := range want {
		if g.owned[a] {
			continue
		}
		for _, p := range g.progs {
			if p != nil {
				if err := p.AddAddress(a); err != nil {
					g.log.Warn("own address", "addr", a, "err", err)
				}
			}
		}
		g.owned[a] = true
	}
	for a := range g.owned {
		if want[a] {
			continue
		}
		for _, p := range g.progs {
			if p != nil {
				p.DeleteAddress(a)
			}
		}
		delete(g.owned, a)
	}
}

// Sockets are the AF_XDP sockets by queue, protected side first.
func (g *Gateway) Sockets() [][2]*afxdp.Socket { return g.socks }

// Wait blocks until the gateway stops and returns why, nil after Close or
// the end of the context.
func (g *Gateway) Wait() error {
	g.wg.Wait()
	g.errMu.Lock()
	defer g.errMu.Unlock()
	return g.err
}

// Close stops the workers, detaches the programs and closes the sockets
// and UMEMs.
func (g *Gateway) Close() error {
	g.cancel()
	g.wg.Wait()
	var errs []error
	for _, p := range g.progs {
		if p != nil {
			errs = append(errs, p.Detach(), p.Close())
		}
	}
	for _, socks := range g.socks {
		for _, s := range socks {
			if s != nil {
				errs = append(errs, s.Close())
			}
		}
	}
	for _, u := range g.umems {
		errs = append(errs, u.Close())
	}
	return errors.Join(errs...)
}
