package main

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/espx/espx/afxdp"
	"golang.org/x/sys/unix"
)

// worker is the AF_XDP side under test: one socket on queue 0 of the DUT's
// veth, driven by one goroutine locked to a thread pinned to one CPU.
type worker struct {
	u    *afxdp.UMEM
	p    *afxdp.Program
	s    *afxdp.Socket
	mode string // rx-drop or l2fwd
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
	if w.s != nil {
		err = w.s.Close()
	}
	if w.p != nil {
		if e := w.p.Close(); err == nil {
			err = e
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
