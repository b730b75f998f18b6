package afxdp

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// counters are a socket's own counts. The socket's goroutine adds to them
// once per batch; Stats reads them from anywhere.
type counters struct {
	rxPackets         atomic.Uint64
	txPackets         atomic.Uint64
	completed         atomic.Uint64
	rxWakeups         atomic.Uint64
	txWakeups         atomic.Uint64
	wakeupEAGAIN      atomic.Uint64
	wakeupENOBUFS     atomic.Uint64
	wakeupEBUSY       atomic.Uint64
	wakeupENETDOWN    atomic.Uint64
	wakeupOther       atomic.Uint64
	rxInvalid         atomic.Uint64
	fillInvalid       atomic.Uint64
	txInvalid         atomic.Uint64
	completionInvalid atomic.Uint64
	bindRetries       atomic.Uint64
	zeroCopyFallbacks atomic.Uint64
}

func (c *counters) wakeupError(errno unix.Errno) {
	switch errno {
	case unix.EAGAIN:
		c.wakeupEAGAIN.Add(1)
	case unix.ENOBUFS:
		c.wakeupENOBUFS.Add(1)
	case unix.EBUSY:
		c.wakeupEBUSY.Add(1)
	case unix.ENETDOWN:
		c.wakeupENETDOWN.Add(1)
	default:
		c.wakeupOther.Add(1)
	}
}

// KernelStats are the kernel's counters for one socket (XDP_STATISTICS).
type KernelStats struct {
	// RxDropped: packets for this socket the kernel dropped, mostly for
	// want of a fill ring buffer.
	RxDropped uint64
	// RxInvalidDescs, TxInvalidDescs: descriptors the kernel refused.
	RxInvalidDescs uint64
	TxInvalidDescs uint64
	// RxRingFull: packets dropped because the RX ring was full.
	RxRingFull uint64
	// RxFillRingEmpty: times the kernel found the fill ring empty.
	RxFillRingEmpty uint64
	// TxRingEmpty: times the kernel found the TX ring empty when woken.
	TxRingEmpty uint64
}

// Stats are a socket's counters: the kernel's and the socket's own.
type Stats struct {
	Kernel KernelStats

	RxPackets uint64 // handed out by Receive
	TxPackets uint64 // posted by Transmit
	Completed uint64 // came back through the completion ring
	// Lent is how many chunks the socket has lent to the kernel now.
	Lent int64

	RxWakeups uint64 // recvfrom calls for the fill ring
	TxWakeups uint64 // sendto calls for the TX ring
	// Wakeup errors, none fatal: EAGAIN (TX budget used, kick again),
	// ENOBUFS, EBUSY, ENETDOWN, and anything else.
	WakeupEAGAIN   uint64
	WakeupENOBUFS  uint64
	WakeupEBUSY    uint64
	WakeupENETDOWN uint64
	WakeupOther    uint64

	// Descriptors refused by this side's checks (bugs, never silent).
	RxInvalid, FillInvalid, TxInvalid, CompletionInvalid uint64

	BindRetries       uint64 // binds retried after EBUSY
	ZeroCopyFallbacks uint64 // 1 if zero-copy failed and copy mode bound
}

// Stats reads the kernel's statistics for the socket and its own counters.
// It may be called from any goroutine. If the kernel's cannot be read (a
// closed socket) it returns the socket's own counters with the error.
func (s *Socket) Stats() (Stats, error) {
	c := &s.c
	st := Stats{
		RxPackets:         c.rxPackets.Load(),
		TxPackets:         c.txPackets.Load(),
		Completed:         c.completed.Load(),
		Lent:              s.lent.Load(),
		RxWakeups:         c.rxWakeups.Load(),
		TxWakeups:         c.txWakeups.Load(),
		WakeupEAGAIN:      c.wakeupEAGAIN.Load(),
		WakeupENOBUFS:     c.wakeupENOBUFS.Load(),
		WakeupEBUSY:       c.wakeupEBUSY.Load(),
		WakeupENETDOWN:    c.wakeupENETDOWN.Load(),
		WakeupOther:       c.wakeupOther.Load(),
		RxInvalid:         c.rxInvalid.Load(),
		FillInvalid:       c.fillInvalid.Load(),
		TxInvalid:         c.txInvalid.Load(),
		CompletionInvalid: c.completionInvalid.Load(),
		BindRetries:       c.bindRetries.Load(),
		ZeroCopyFallbacks: c.zeroCopyFallbacks.Load(),
	}
	var k unix.XDPStatistics
	// Hold the UMEM lock so that Close cannot free the descriptor number
	// for reuse while it is read.
	s.umem.mu.Lock()
	closed := s.closed
	var err error
	if !closed {
		err = getsockopt(s.fd, unix.SOL_XDP, unix.XDP_STATISTICS, unsafe.Pointer(&k), unsafe.Sizeof(k))
	}
	s.umem.mu.Unlock()
	if closed {
		return st, fmt.Errorf("XDP_STATISTICS: %w", ErrClosed)
	}
	if err != nil {
		return st, fmt.Errorf("XDP_STATISTICS: %w", err)
	}
	st.Kernel = KernelStats{
		RxDropped:       k.Rx_dropped,
		RxInvalidDescs:  k.Rx_invalid_descs,
		TxInvalidDescs:  k.Tx_invalid_descs,
		RxRingFull:      k.Rx_ring_full,
		RxFillRingEmpty: k.Rx_fill_ring_empty_descs,
		TxRingEmpty:     k.Tx_ring_empty_descs,
	}
	return st, nil
}
