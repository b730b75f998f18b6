package main

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"

	"github.com/espx/espx/afxdp"
	"github.com/espx/espx/dataplane"
	"golang.org/x/sys/unix"
)

// worker is the AF_XDP side under test: one socket on queue 0 of the DUT's
// veth, driven by one goroutine locked to a thread pinned to one CPU. In
// espx mode it is espx's data plane worker with two sockets on one UMEM:
// s on the DUT's veth (the protected side, where frames arrive) and out
// on the DUT's end of the ESP pair (the unprotected side, where they
// leave).
type worker struct {
	u    *afxdp.UMEM
	p    *afxdp.Program
	s    *afxdp.Socket
	mode string // rx-drop, l2fwd or espx

	// espx only.
	pOut *afxdp.Program
	out  *afxdp.Socket
	dw   *dataplane.Worker
	// wait is what the worker does when its RX ring is empty: busy (try
	// again at once), poll (block in poll()), or yield (sched_yield, so
	// that a NAPI thread on the same CPU runs at once).
	wait string

	tid      atomic.Int64  // the worker thread's TID, for its CPU clock
	received atomic.Uint64 // packets taken from the RX ring
	// paused makes an idle worker sleep, so that the host's load can be
	// measured between trials.
	paused atomic.Bool
	stop   atomic.Bool
	done   chan struct{}
}

// newWorker opens the UMEM and socket and attaches the XDP program to the
// DUT's device, on the DUT's namespace thread.
func newWorker(t *topology, mode, wait string, ring, frames int) (w *worker, err error) {
	w = &worker{mode: mode, wait: wait, done: make(chan struct{})}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.u, err = afxdp.NewUMEM(afxdp.UMEMConfig{FrameSize: 2048, NumFrames: frames}); err != nil {
		return w, err
	}
	if mode == "espx" {
		return w, w.openEspx(t, ring)
	}
	if w.p, err = afxdp.NewProgram(afxdp.ProgramConfig{Side: afxdp.Unprotected, Mode: afxdp.AttachNative}); err != nil {
		return w, err
	}
	err = t.dutThread.do(func() error {
		if _, err := w.p.Attach(t.dutIdx); err != nil {
			return err
		}
		w.s, err = afxdp.NewSocket(w.u, t.dutIdx, 0, afxdp.SocketConfig{FillSize: ring, CompletionSize: ring, RxSize: ring, TxSize: ring, Mode: afxdp.BindCopy})
		return err
	})
	if err != nil {
		return w, err
	}
	w.s.Refill()
	if err := w.p.SetSocket(w.s); err != nil {
		return w, err
	}
	return w, nil
}

// start runs the worker loop on its own thread, pinned to cpu.
func (w *worker) start(cpu, batch int) error {
	errc := make(chan error, 1)
	go func() {
		defer close(w.done)
		runtime.LockOSThread() // never unlocked: the pinned thread ends with the goroutine
		if err := pin(0, cpu); err != nil {
			errc <- fmt.Errorf("pin worker to CPU %d: %w", cpu, err)
			return
		}
		if err := quietThread(); err != nil {
			errc <- err
			return
		}
		w.tid.Store(int64(unix.Gettid()))
		errc <- nil
		w.loop(batch)
	}()
	return <-errc
}

func (w *worker) loop(batch int) {
	if w.dw != nil {
		w.espxLoop()
		return
	}
	s, u := w.s, w.u
	descs := make([]afxdp.Desc, batch)
	l2fwd := w.mode == "l2fwd"
	poll, yield := w.wait == "poll", w.wait == "yield"
	var total uint64
	for !w.stop.Load() {
		n := s.Receive(descs)
		if n == 0 {
			if l2fwd {
				s.Kick()
				s.Complete()
				s.Refill()
			}
			switch {
			case w.paused.Load():
				ts := unix.Timespec{Nsec: 1e6}
				_ = unix.Nanosleep(&ts, nil)
			case poll:
				_, _ = s.Wait(10)
			case yield:
				_, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
			}
			continue
		}
		if l2fwd {
			for _, d := range descs[:n] {
				f := u.Data(d)
				var tmp [6]byte
				copy(tmp[:], f[0:6])
				copy(f[0:6], f[6:12])
				copy(f[6:12], tmp[:])
			}
			sent := s.Transmit(descs[:n])
			if sent < n {
				u.Free(descs[sent:n])
			}
			s.Refill()
		} else {
			s.Recycle(descs[:n])
		}
		total += uint64(n)
		w.received.Store(total)
	}
}

// close stops the loop, closes the socket, detaches the program and
// checks the UMEM's accounting.
func (w *worker) close() error {
	if w.done != nil && w.tid.Load() != 0 {
		w.stop.Store(true)
		<-w.done
	}
	var err error
	for _, s := range []*afxdp.Socket{w.s, w.out} {
		if s != nil {
			if e := s.Close(); err == nil {
				err = e
			}
		}
	}
	for _, p := range []*afxdp.Program{w.p, w.pOut} {
		if p != nil {
			if e := p.Close(); err == nil {
				err = e
			}
		}
	}
	if w.u != nil {
		if a := w.u.Accounting(); a.BadFrees != 0 && err == nil {
			err = fmt.Errorf("UMEM accounting: %+v", a)
		}
		if e := w.u.Close(); err == nil {
			err = e
		}
	}
	return err
}

// openEspx sets up espx's data plane on the DUT: the two sides' XDP
// programs, as espxd attaches them, with the gateway's own addresses in
// them (the generator's frames are to neither: transit), a socket on
// queue 0 of each device on the one UMEM, and a dataplane.Worker over
// them with the bench's data plane and static router. The rings that
// carry traffic are ring long; the others (the protected side's TX and
// completion, the unprotected side's fill and RX) 64, so that frames are
// not parked where no traffic flows.
func (w *worker) openEspx(t *topology, ring int) (err error) {
	const idle = 64
	if w.p, err = afxdp.NewProgram(afxdp.ProgramConfig{Side: afxdp.Protected, Mode: afxdp.AttachNative}); err != nil {
		return err
	}
	if w.pOut, err = afxdp.NewProgram(afxdp.ProgramConfig{Side: afxdp.Unprotected, Mode: afxdp.AttachNative}); err != nil {
		return err
	}
	for _, a := range []netip.Addr{espxGwProt, espxGwOuter} {
		if err := errors.Join(w.p.AddAddress(a), w.pOut.AddAddress(a)); err != nil {
			return err
		}
	}
	err = t.dutThread.do(func() error {
		if _, err := w.p.Attach(t.dutIdx); err != nil {
			return err
		}
		if _, err := w.pOut.Attach(t.espIdx); err != nil {
			return err
		}
		if w.s, err = afxdp.NewSocket(w.u, t.dutIdx, 0, afxdp.SocketConfig{FillSize: ring, RxSize: ring, TxSize: idle, CompletionSize: idle, Mode: afxdp.BindCopy}); err != nil {
			return err
		}
		w.out, err = afxdp.NewSocket(w.u, t.espIdx, 0, afxdp.SocketConfig{FillSize: idle, RxSize: idle, TxSize: ring, CompletionSize: ring, Mode: afxdp.BindCopy})
		return err
	})
	if err != nil {
		return err
	}
	w.s.Refill()
	w.out.Refill()
	if err := errors.Join(w.p.SetSocket(w.s), w.pOut.SetSocket(w.out)); err != nil {
		return err
	}
	dp, err := newEspxDataplane()
	if err != nil {
		return err
	}
	// CPU -1: the bench's loop pins its own thread, as for the other
	// modes.
	w.dw, err = dp.AddWorker(dataplane.WorkerConfig{Protected: w.s, Unprotected: w.out, Mem: w.u, Router: newStaticRouter(t), CPU: -1})
	return err
}

// espxLoop drives the data plane worker as Worker.Run does while traffic
// flows, Poll after Poll; when a Poll finds nothing it waits as -waits
// says (Run would poll(2) after 256 empty rounds).
func (w *worker) espxLoop() {
	poll, yield := w.wait == "poll", w.wait == "yield"
	var total uint64
	for !w.stop.Load() {
		if n := w.dw.Poll(); n > 0 {
			total += uint64(n)
			w.received.Store(total)
			continue
		}
		switch {
		case w.paused.Load():
			ts := unix.Timespec{Nsec: 1e6}
			_ = unix.Nanosleep(&ts, nil)
		case poll:
			_, _ = w.s.Wait(10)
		case yield:
			_, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		}
	}
}

// stats are the socket's counters; in espx, the protected side's for
// receive and the unprotected side's for transmit, where the traffic is.
func (w *worker) stats() (afxdp.Stats, error) {
	st, err := w.s.Stats()
	if err != nil || w.out == nil {
		return st, err
	}
	o, err := w.out.Stats()
	if err != nil {
		return st, err
	}
	st.Kernel.TxInvalidDescs, st.Kernel.TxRingEmpty = o.Kernel.TxInvalidDescs, o.Kernel.TxRingEmpty
	st.TxPackets, st.Completed, st.TxWakeups = o.TxPackets, o.Completed, o.TxWakeups
	st.WakeupEAGAIN += o.WakeupEAGAIN
	st.WakeupENOBUFS += o.WakeupENOBUFS
	st.WakeupEBUSY += o.WakeupEBUSY
	st.WakeupENETDOWN += o.WakeupENETDOWN
	st.WakeupOther += o.WakeupOther
	return st, nil
}

// counters are the data plane worker's counters (espx), or zero.
func (w *worker) counters() dataplane.CounterSnapshot {
	if w.dw == nil {
		return dataplane.CounterSnapshot{}
	}
	return w.dw.C.Snapshot()
}
