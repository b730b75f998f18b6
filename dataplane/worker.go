package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/espx/espx/afxdp"
	"github.com/espx/espx/spd"
)

// Sides of a worker, the index of per-side counters.
const (
	Protected   = 0
	Unprotected = 1
)

// Port is one AF_XDP socket as a worker drives it; *afxdp.Socket
// implements it, and tests and benchmarks use in-memory fakes.
type Port interface {
	Receive(descs []afxdp.Desc) int
	Transmit(descs []afxdp.Desc) int
	Recycle(descs []afxdp.Desc) int
	Refill() int
	Complete() int
	Ifindex() int
	// FD is the socket to poll when idle, or -1 for none.
	FD() int
}

// Mem is the packet memory a worker's ports share; *afxdp.UMEM
// implements it.
type Mem interface {
	Chunk(d afxdp.Desc) (buf []byte, off int)
	Desc(chunkAddr uint64, off, length int) afxdp.Desc
	Alloc(addrs []uint64) int
	Free(descs []afxdp.Desc)
	FreeAddrs(addrs []uint64)
	RxOffset() int
}

// NextHop is where a packet goes next: the interface, and the Ethernet
// addresses of the header to write.
type NextHop struct {
	Ifindex        int
	Addr           netip.Addr // the gateway, or the destination when on-link
	SrcMAC, DstMAC [6]byte
	MTU            int
}

// RouteResult is the outcome of a route lookup.
type RouteResult uint8

// Route lookup outcomes.
const (
	RouteOK RouteResult = iota
	RouteNone
	// RouteUnresolved: there is a route, but the next hop's link-layer
	// address is not known; NextHop is filled apart from DstMAC.
	RouteUnresolved
)

// Router finds next hops, from the kernel's tables (package fib) or from a
// fake in tests. It is called by many workers at once and must not lock
// or allocate.
type Router interface {
	Route(dst netip.Addr, nh *NextHop) RouteResult
	// Resolve asks for the link-layer address of addr on ifindex; it
	// must not block.
	Resolve(ifindex int, addr netip.Addr)
	// Source is this gateway's address on ifindex in the family of v6,
	// the source of ICMP errors sent out of it; invalid if none.
	Source(ifindex int, v6 bool) netip.Addr
}

// Batch is the number of frames a worker takes from a ring at once.
const Batch = 64

// WorkerConfig sets up a worker.
type WorkerConfig struct {
	// Protected and Unprotected are the sockets of one queue on each
	// interface, on the shared Mem.
	Protected, Unprotected Port
	Mem                    Mem
	Router                 Router
	// CPU pins the worker's thread; negative leaves it unpinned.
	CPU int
	// Counters are the worker's counters; nil makes new ones.
	Counters *Counters
	// ICMPRate limits the ICMP errors the worker sends per second; 0
	// means 1000.
	ICMPRate int
}

// Worker moves packets between the protected and unprotected sockets of
// one queue: outbound packets are looked up in the SPD and encrypted,
// inbound ones decrypted and checked against the policies, and both are
// routed and sent. One goroutine runs it, on a locked OS thread.
type Worker struct {
	id     int
	dp     *Dataplane
	ports  [2]Port
	mem    Mem
	rt     Router
	cpu    int
	eng    *Engine
	C      *Counters
	ifidx  [2]int
	icmpPS int

	icmpTokens int
	icmpSec    int64

	// Batch state, reused.
	rx      [Batch]afxdp.Desc
	frames  [Batch]Frame
	keys    [Batch]spd.Key
	ents    [Batch]*spd.Entry
	drops   [Batch]Drop
	inSAs   [Batch]*InboundSA
	outSAs  [Batch]*OutboundSA
	ins     [Batch]Inbound
	nhs     [Batch]NextHop
	nh      NextHop // scratch for route lookups: a local would escape
	nhICMP  NextHop
	idx     [Batch]int
	cFrames [Batch]Frame
	cOut    [Batch]*OutboundSA
	cIn     [Batch]*InboundSA
	cIns    [Batch]Inbound
	cDrops  [Batch]Drop
	cKeys   [Batch]spd.Key
	cEnts   [Batch]*spd.Entry
	tx      [2][]afxdp.Desc
	free    []afxdp.Desc
	addrs   [Batch]uint64

	nheld []neighHeld
	nfree [][]byte
	// frags are the later fragments of packets fragmented before
	// encapsulation, sent after the batch that made them.
	frags     []fragPending
	inFrags   bool
	fragAddrs [maxFragsPerPacket]uint64

	injMu   sync.Mutex
	injQ    [][]byte
	injPend atomic.Bool
	injWork [][]byte
}

// AddWorker creates a worker on dp. Workers are numbered in the order
// they are added.
func (dp *Dataplane) AddWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Protected == nil || cfg.Unprotected == nil || cfg.Mem == nil || cfg.Router == nil {
		return nil, fmt.Errorf("worker needs both ports, memory and a router")
	}
	if cfg.ICMPRate == 0 {
		cfg.ICMPRate = 1000
	}
	var ws []*Worker
	if p := dp.workers.Load(); p != nil {
		ws = *p
	}
	w := &Worker{
		id: len(ws), dp: dp,
		ports: [2]Port{cfg.Protected, cfg.Unprotected},
		mem:   cfg.Mem, rt: cfg.Router, cpu: cfg.CPU,
		eng:    NewEngine(cfg.Counters),
		ifidx:  [2]int{cfg.Protected.Ifindex(), cfg.Unprotected.Ifindex()},
		icmpPS: cfg.ICMPRate,
		free:   make([]afxdp.Desc, 0, 2*Batch),
	}
	w.C = w.eng.C
	w.tx[0] = make([]afxdp.Desc, 0, 2*Batch)
	w.tx[1] = make([]afxdp.Desc, 0, 2*Batch)
	nws := append(append([]*Worker(nil), ws...), w)
	dp.workers.Store(&nws)
	return w, nil
}

// Workers are the data plane's workers.
func (dp *Dataplane) Workers() []*Worker {
	if p := dp.workers.Load(); p != nil {
		return *p
	}
	return nil
}

// ID is the worker's number.
func (w *Worker) ID() int { return w.id }

// idleSpins is how many empty polls of both rings a worker makes before it
// sleeps in poll(2): busy polling while traffic flows, no burnt core when
// none does.
const idleSpins = 256

// Run moves packets until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if w.cpu >= 0 {
		var set unix.CPUSet
		set.Set(w.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("worker %d: pin to CPU %d: %w", w.id, w.cpu, err)
		}
	}
	pfd := make([]unix.PollFd, 0, 2)
	for _, p := range w.ports {
		if fd := p.FD(); fd >= 0 {
			pfd = append(pfd, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
	}
	idle := 0
	for ctx.Err() == nil {
		if w.Poll() > 0 {
			idle = 0
			continue
		}
		idle++
		if idle < idleSpins || len(pfd) == 0 {
			continue
		}
		idle = 0
		for i := range pfd {
			pfd[i].Revents = 0
		}
		// Poll blocks the thread and hands the P over, which is right
		// here: the worker has nothing to do for now.
		if _, err := unix.Poll(pfd, 10); err != nil && err != unix.EINTR {
			return fmt.Errorf("worker %d: poll: %w", w.id, err)
		}
	}
	return nil
}

// Poll runs one round: held packets released by the control plane, then a
// batch from each side. It returns how many frames it handled.
func (w *Worker) Poll() int {
	w.eng.Now = time.Now().UnixNano()
	n := 0
	if w.injPend.Load() {
		n += w.injected()
	}
	if len(w.nheld) > 0 {
		n += w.retryNeighbours()
	}
	for side := range w.ports {
		p := w.ports[side]
		p.Refill()
		k := p.Receive(w.rx[:])
		if k == 0 {
			p.Complete()
			continue
		}
		n += k
		w.process(side, w.rx[:k])
	}
	return n
}

// process runs frames received on side through the outbound (protected
// side) or inbound (unprotected side) path and sends them on.
func (w *Worker) process(side int, descs []afxdp.Desc) {
	e := &w.eng.n
	for i, d := range descs {
		buf, off := w.mem.Chunk(d)
		w.frames[i] = Frame{Buf: buf, Off: off, Len: min(int(d.Len), len(buf)-off)}
		e.rxBytes[side] += uint64(d.Len)
	}
	e.rxPackets[side] += uint64(len(descs))
	if side == Protected {
		w.outbound(descs)
	} else {
		w.inbound(descs)
	}
	w.flush(side, descs)
}

// dropFrame records that frame i is dropped for d, and counts it.
func (w *Worker) dropFrame(i int, d Drop) {
	w.drops[i] = d
	w.eng.drop(d)
}

// outbound handles a batch from the protected side.
func (w *Worker) outbound(descs []afxdp.Desc) {
	n := len(descs)
	for i := range n {
		w.drops[i] = DropNone
		w.outSAs[i] = nil
		f := &w.frames[i]
		if d := stripEthernet(f); d != DropNone {
			w.keys[i] = spd.Key{}
			w.dropFrame(i, d)
			continue
		}
		if d := flowKey(f.Data(), &w.keys[i]); d != DropNone {
			w.dropFrame(i, d)
		}
	}
	w.dp.SPD.LookupBatchStats(spd.DirOut, w.keys[:n], w.ents[:n], &w.eng.n.spdStats)
	w.eng.n.spd += uint64(n)

	m := 0 // frames to encapsulate
	var lastSA *OutboundSA
	var lastRes RouteResult
	for i := range n {
		if w.drops[i] != DropNone {
			continue
		}
		f := &w.frames[i]
		ent := w.ents[i]
		act := spd.Bypass
		if ent != nil {
			act = ent.Action()
		} else if !w.dp.cfg.DefaultBypass {
			act = spd.Discard
		}
		switch act {
		case spd.Discard:
			d := DropPolicyBlock
			if ent == nil {
				d = DropNoPolicy
			}
			w.dropFrame(i, d)
			continue
		case spd.Bypass:
			w.forward(i)
			continue
		}
		sa := w.dp.sad.out.get(ent.SA())
		if sa == nil {
			if !ent.Trap() {
				w.dropFrame(i, DropNoState)
				continue
			}
			// Hand over the whole frame, Ethernet header included, so that
			// the packet comes back through this path once the SA is in.
			raw := f.Buf[f.Off-ethLen : f.Off+f.Len]
			switch w.dp.acq.hit(w.id, ent, &w.keys[i], raw, time.Unix(0, w.eng.Now)) {
			case acqRaised:
				w.eng.n.acquires++
			case acqRaisedDrop:
				w.eng.n.acquires++
				w.eng.drop(DropAcquire)
			case acqHeld:
				w.eng.n.suppressed++
			default:
				w.eng.n.suppressed++
				w.eng.drop(DropAcquire)
			}
			// The frame itself is done with either way: held packets were
			// copied.
			w.drops[i] = dropHeld
			continue
		}
		// As a router does (RFC 1812 section 5.3.1): TTL first, then the
		// MTU, and the TTL is lowered only on a packet that goes on, so
		// that an ICMP error quotes the packet as it came.
		if !ttlOK(f.Data()) {
			w.icmp(i, icmpTimeExceeded, icmp6TimeExceeded, 0, 0, DropTTL)
			continue
		}
		dst := sa.OuterDst()
		if sa.Mode() == ModeTransport {
			dst = w.keys[i].Dst
			lastSA = nil
		}
		if sa != lastSA {
			lastSA, lastRes = sa, w.rt.Route(dst, &w.nh)
		}
		switch lastRes {
		case RouteNone:
			w.dropFrame(i, DropNoRoute)
			continue
		case RouteUnresolved:
			w.holdForNeighbour(i, dst, true)
			continue
		}
		if out := sa.OuterLen(f.Len); w.nh.MTU > 0 && out > w.nh.MTU {
			maxIn := sa.MaxInner(w.nh.MTU)
			p := f.Data()
			if p[0]>>4 != 4 || ipv4(p).flagsFrag()&ipv4FlagDF != 0 || ipv4(p).headerLen() != ipv4MinLen {
				// Path MTU: tell the sender what fits inside the tunnel.
				w.icmp(i, icmpDestUnreach, icmp6PacketTooBig, icmpFragNeeded, maxIn, DropTooBig)
				continue
			}
			// DF clear: fragment, as a router would.
			decTTL(p)
			if !w.fragmentInner(i, sa, maxIn) {
				w.dropFrame(i, DropTooBig)
				continue
			}
		} else {
			decTTL(f.Data())
		}
		w.nhs[i] = w.nh
		w.idx[m] = i
		w.cFrames[m] = *f
		w.cOut[m] = sa
		m++
	}
	if m == 0 {
		return
	}
	w.eng.EncapBatch(w.cOut[:m], w.cFrames[:m], w.cDrops[:m])
	for j := range m {
		i := w.idx[j]
		if d := w.cDrops[j]; d != DropNone {
			w.drops[i] = d // counted by the engine
			continue
		}
		w.frames[i] = w.cFrames[j]
		if d := pushEthernet(&w.frames[i], &w.nhs[i]); d != DropNone {
			w.dropFrame(i, d)
		}
	}
}

// inbound handles a batch from the unprotected side.
func (w *Worker) inbound(descs []afxdp.Desc) {
	n := len(descs)
	m := 0 // ESP frames to decrypt
	for i := range n {
		w.drops[i] = DropNone
		w.inSAs[i] = nil
		f := &w.frames[i]
		if d := stripEthernet(f); d != DropNone {
			w.dropFrame(i, d)
			continue
		}
		d := ParseInbound(f, &w.ins[i])
		if d == DropNotESP {
			continue // cleartext: checked against the policies below
		}
		if d != DropNone {
			w.dropFrame(i, d)
			continue
		}
		sa := w.dp.sad.in.get(uint64(w.ins[i].SPI))
		if sa == nil {
			w.dropFrame(i, DropNoState)
			continue
		}
		w.inSAs[i] = sa
		w.idx[m] = i
		w.cFrames[m] = *f
		w.cIn[m] = sa
		w.cIns[m] = w.ins[i]
		m++
	}
	if m > 0 {
		w.eng.DecapBatch(w.cIn[:m], w.cIns[:m], w.cFrames[:m], w.cDrops[:m])
		for j := range m {
			i := w.idx[j]
			if d := w.cDrops[j]; d != DropNone {
				w.drops[i] = d // counted by the engine
				continue
			}
			w.frames[i] = w.cFrames[j]
		}
	}
	// Every packet that goes on, decrypted or clear, meets the forward
	// policies: a decrypted one must match a protect policy of its SA, a
	// clear one a bypass policy (or the default).
	k := 0
	for i := range n {
		if w.drops[i] != DropNone {
			continue
		}
		if d := flowKey(w.frames[i].Data(), &w.cKeys[k]); d != DropNone {
			w.dropFrame(i, d)
			continue
		}
		w.idx[k] = i
		k++
	}
	w.dp.SPD.LookupBatchStats(spd.DirFwd, w.cKeys[:k], w.cEnts[:k], &w.eng.n.spdStats)
	w.eng.n.spd += uint64(k)
	for j := range k {
		i := w.idx[j]
		ent := w.cEnts[j]
		if sa := w.inSAs[i]; sa != nil {
			if ent == nil || ent.Action() != spd.Protect || ent.SA() != sa.reqid {
				w.dropFrame(i, DropTmplMismatch)
				continue
			}
		} else {
			switch {
			case ent == nil && !w.dp.cfg.DefaultBypass:
				w.dropFrame(i, DropNoPolicy)
				continue
			case ent == nil || ent.Action() == spd.Bypass:
			case ent.Action() == spd.Discard:
				w.dropFrame(i, DropPolicyBlock)
				continue
			default:
				// A protect policy covers it: it had to come through an SA.
				w.dropFrame(i, DropNoPolicy)
				continue
			}
		}
		w.forward(i)
	}
}

// forward routes the IP packet in frame i as a router does: TTL, route,
// MTU, then the TTL lowered and the Ethernet header written.
func (w *Worker) forward(i int) {
	f := &w.frames[i]
	if !ttlOK(f.Data()) {
		w.icmp(i, icmpTimeExceeded, icmp6TimeExceeded, 0, 0, DropTTL)
		return
	}
	nh := &w.nhs[i]
	dst := dstAddr(f.Data())
	switch w.rt.Route(dst, nh) {
	case RouteNone:
		w.dropFrame(i, DropNoRoute)
		return
	case RouteUnresolved:
		w.holdForNeighbour(i, dst, false)
		return
	}
	if nh.MTU > 0 && f.Len > nh.MTU {
		w.icmp(i, icmpDestUnreach, icmp6PacketTooBig, icmpFragNeeded, nh.MTU, DropTooBig)
		return
	}
	decTTL(f.Data())
	if d := pushEthernet(f, nh); d != DropNone {
		w.dropFrame(i, d)
	}
}

// icmp counts frame i dropped for reason and, if the rate limit and RFCs
// allow, turns it into the ICMP error typ4/typ6 with code and mtu, sent
// back towards the packet's source.
func (w *Worker) icmp(i int, typ4, typ6, code uint8, mtu int, reason Drop) {
	w.eng.drop(reason)
	w.drops[i] = reason
	f := &w.frames[i]
	p := f.Data()
	if !icmpErrorOK(p) || !w.icmpAllowed() {
		return
	}
	v6 := p[0]>>4 == 6
	typ := typ4
	if v6 {
		typ, code = typ6, 0
	}
	// Not w.nh: it holds the next hop of the SA the batch is on.
	back := &w.nhICMP
	var srcAddr netip.Addr
	if v6 {
		srcAddr = netip.AddrFrom16([16]byte(p[ipv6SrcOff : ipv6SrcOff+16]))
	} else {
		srcAddr = netip.AddrFrom4([4]byte(p[ipv4SrcOff : ipv4SrcOff+4]))
	}
	if w.rt.Route(srcAddr, back) != RouteOK {
		return
	}
	from := w.rt.Source(back.Ifindex, v6)
	if !icmpError(f, from, typ, code, mtu) {
		return
	}
	if pushEthernet(f, back) != DropNone {
		return
	}
	w.nhs[i] = *back
	w.drops[i] = DropNone
	w.eng.n.icmp++
}

func (w *Worker) icmpAllowed() bool {
	sec := w.eng.Now / int64(time.Second)
	if sec != w.icmpSec {
		w.icmpSec, w.icmpTokens = sec, w.icmpPS
	}
	if w.icmpTokens <= 0 {
		return false
	}
	w.icmpTokens--
	return true
}

// flush sends the frames of a batch that go on, to the socket of the
// interface their next hop is on, and gives the dropped ones back to the
// fill ring of side, where they came from.
func (w *Worker) flush(side int, descs []afxdp.Desc) {
	for i := range descs {
		f := &w.frames[i]
		if w.drops[i] != DropNone {
			w.free = append(w.free, descs[i])
			continue
		}
		out := -1
		switch w.nhs[i].Ifindex {
		case w.ifidx[Protected]:
			out = Protected
		case w.ifidx[Unprotected]:
			out = Unprotected
		}
		if out < 0 {
			w.eng.drop(DropNoRoute)
			w.free = append(w.free, descs[i])
			continue
		}
		w.tx[out] = append(w.tx[out], w.mem.Desc(descs[i].Addr, f.Off, f.Len))
	}
	w.send()
	if len(w.free) > 0 {
		k := w.ports[side].Recycle(w.free)
		if k < len(w.free) {
			w.mem.Free(w.free[k:])
		}
		w.free = w.free[:0]
	}
	w.eng.n.publish(w.C)
	if len(w.frags) > 0 && !w.inFrags {
		w.inFrags = true
		w.sendFragments()
		w.inFrags = false
	}
}

// send transmits what the batch queued on each side.
func (w *Worker) send() {
	for out := range w.tx {
		q := w.tx[out]
		if len(q) == 0 {
			continue
		}
		k := w.ports[out].Transmit(q)
		var bytes uint64
		for _, d := range q[:k] {
			bytes += uint64(d.Len)
		}
		w.eng.n.txPackets[out] += uint64(k)
		w.eng.n.txBytes[out] += bytes
		if k < len(q) {
			w.eng.n.drops[DropTxFull] += uint64(len(q) - k)
			w.mem.Free(q[k:])
		}
		w.tx[out] = q[:0]
	}
}

// inject queues a held packet (a whole Ethernet frame in a buffer of the
// acquirer's pool) to go through the outbound path again.
func (w *Worker) inject(buf []byte) {
	w.injMu.Lock()
	w.injQ = append(w.injQ, buf)
	w.injMu.Unlock()
	w.injPend.Store(true)
}

// injected sends the packets the control plane released from acquires:
// each is copied into a frame of its own and runs the outbound path as if
// just received.
func (w *Worker) injected() int {
	w.injMu.Lock()
	w.injWork, w.injQ = w.injQ, w.injWork[:0]
	w.injPend.Store(false)
	w.injMu.Unlock()
	done := 0
	for len(w.injWork) > 0 {
		chunk := w.injWork[:min(len(w.injWork), Batch)]
		got := w.mem.Alloc(w.addrs[:len(chunk)])
		for j := range got {
			b := chunk[j]
			d := w.mem.Desc(w.addrs[j], w.mem.RxOffset(), len(b))
			buf, off := w.mem.Chunk(d)
			copy(buf[off:], b)
			w.rx[j] = d
			w.dp.acq.put(b)
		}
		for _, b := range chunk[got:] {
			// No free frame: the packet is lost, and counted.
			w.eng.drop(DropAcquire)
			w.dp.acq.put(b)
		}
		if got > 0 {
			w.eng.n.heldSent += uint64(got)
			for j := range got {
				buf, off := w.mem.Chunk(w.rx[j])
				w.frames[j] = Frame{Buf: buf, Off: off, Len: int(w.rx[j].Len)}
			}
			w.outbound(w.rx[:got])
			w.flush(Protected, w.rx[:got])
		}
		done += len(chunk)
		w.injWork = w.injWork[len(chunk):]
	}
	w.injWork = w.injWork[:0]
	return done
}
