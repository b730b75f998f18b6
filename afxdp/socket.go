package afxdp

import (
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BindMode chooses between zero-copy and copy mode.
type BindMode int

const (
	// BindAuto tries zero-copy and falls back to copy mode.
	BindAuto BindMode = iota
	// BindZeroCopy fails if the driver cannot do zero-copy.
	BindZeroCopy
	// BindCopy asks for copy mode.
	BindCopy
)

// DefaultRingSize is the size of each ring when SocketConfig leaves it 0.
const DefaultRingSize = 2048

// bindRetry bounds the retries of a bind that fails with EBUSY: the kernel
// releases a queue's previous socket asynchronously, for up to ~30 ms here.
const (
	bindRetryFor   = 500 * time.Millisecond
	bindRetryPause = 5 * time.Millisecond
)

// SocketConfig sizes a socket's rings (powers of two; 0 means
// DefaultRingSize) and chooses its bind mode.
type SocketConfig struct {
	FillSize       int
	CompletionSize int
	RxSize         int
	TxSize         int
	Mode           BindMode
	// NoNeedWakeup binds without XDP_USE_NEED_WAKEUP, so that every
	// Receive and Transmit makes a syscall. Only for comparisons.
	NoNeedWakeup bool
}

func (c *SocketConfig) sizes() (fill, comp, rx, tx int, err error) {
	vals := [4]*int{&c.FillSize, &c.CompletionSize, &c.RxSize, &c.TxSize}
	var out [4]int
	for i, v := range vals {
		n := *v
		if n == 0 {
			n = DefaultRingSize
		}
		if n < 1 || n&(n-1) != 0 || n > 1<<20 {
			return 0, 0, 0, 0, fmt.Errorf("ring size %d is not a power of two: %w", n, ErrConfig)
		}
		out[i] = n
	}
	return out[0], out[1], out[2], out[3], nil
}

// Socket is an AF_XDP socket bound to one queue of one device, with its own
// fill, completion, RX and TX rings on a (possibly shared) UMEM.
//
// A Socket is driven by one goroutine at a time: Receive, Recycle, Refill,
// Transmit, Complete, Kick and Close must not run concurrently on one
// socket (Stats and the accessors may). Different sockets, even on one
// UMEM, are independent.
type Socket struct {
	fd       int
	umem     *UMEM
	slot     int
	ifindex  int
	queue    int
	zeroCopy bool
	wakeup   bool // bound with XDP_USE_NEED_WAKEUP

	fill fillQueue
	comp completionQueue
	rx   rxQueue
	tx   txQueue

	// held marks the chunks this socket lent to the kernel (posted to fill
	// or TX, not yet back through RX or completion); heldN counts them.
	// Only the socket's goroutine touches them; lent publishes heldN for
	// Accounting once per batch.
	held  bitmap
	heldN int
	lent  atomic.Int64

	scratch []uint64 // a completion batch, or chunks on their way to fill
	pollfd  [1]unix.PollFd

	c      counters
	closed bool
}

// NewSocket opens an AF_XDP socket on queue of the device ifindex with
// its chunks in u, and binds it. The first socket on a UMEM registers it
// with the kernel; later ones share it (XDP_SHARED_UMEM), on any queue of
// any device, and get their own fill and completion rings. The bind mode is
// the UMEM's: zero-copy if the first socket got it, else copy. Sockets are
// created in the network namespace of the calling thread.
//
// The fill ring starts empty: call Refill before expecting packets.
func NewSocket(u *UMEM, ifindex, queue int, cfg SocketConfig) (*Socket, error) {
	fillN, compN, rxN, txN, err := cfg.sizes()
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, fmt.Errorf("open socket: %w", ErrClosed)
	}
	var share *Socket
	slot := -1
	for i, o := range u.sockets {
		switch {
		case o == nil:
			if slot < 0 {
				slot = i
			}
		case o.ifindex == ifindex && o.queue == queue:
			return nil, fmt.Errorf("socket on ifindex %d queue %d: %w", ifindex, queue, ErrQueueInUse)
		case share == nil:
			share = o
		}
	}

	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) {
			err = fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("AF_XDP socket: %w", err)
	}
	s := &Socket{fd: fd, umem: u, ifindex: ifindex, queue: queue, held: newBitmap(u.numFrames)}
	ok := false
	defer func() {
		if !ok {
			s.unmap()
			_ = unix.Close(fd)
		}
	}()

	if share == nil {
		reg := unix.XDPUmemReg{
			Addr:     uint64(uintptr(unsafe.Pointer(&u.area[0]))),
			Len:      uint64(len(u.area)),
			Size:     uint32(u.frameSize),
			Headroom: uint32(u.headroom),
		}
		if err := setsockopt(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return nil, fmt.Errorf("register UMEM: %w", err)
		}
	}
	for _, r := range []struct {
		opt  int
		size int
	}{
		{unix.XDP_UMEM_FILL_RING, fillN},
		{unix.XDP_UMEM_COMPLETION_RING, compN},
		{unix.XDP_RX_RING, rxN},
		{unix.XDP_TX_RING, txN},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, r.opt, r.size); err != nil {
			return nil, fmt.Errorf("ring option %d size %d: %w", r.opt, r.size, err)
		}
	}
	// Copy mode sends at most 32 frames per sendto unless told otherwise
	// (Linux 6.17 and later); ask for a whole ring's worth. Older kernels
	// refuse the option, which only costs more sendto calls.
	_ = unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, txN)

	var off unix.XDPMmapOffsets
	if err := getsockopt(fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return nil, fmt.Errorf("ring offsets: %w", err)
	}
	if err := s.mapRings(off, fillN, compN, rxN, txN); err != nil {
		return nil, err
	}

	if err := s.bind(share, cfg); err != nil {
		return nil, fmt.Errorf("bind ifindex %d queue %d: %w", ifindex, queue, err)
	}
	var opts uint32
	if err := getsockopt(fd, unix.SOL_XDP, unix.XDP_OPTIONS, unsafe.Pointer(&opts), unsafe.Sizeof(opts)); err == nil {
		s.zeroCopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	}
	if cfg.Mode == BindZeroCopy && !s.zeroCopy {
		return nil, fmt.Errorf("zero-copy on ifindex %d queue %d: UMEM is in copy mode: %w", ifindex, queue, ErrUnsupported)
	}

	s.scratch = make([]uint64, max(fillN, compN))
	s.pollfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	if slot < 0 {
		slot = len(u.sockets)
		u.sockets = append(u.sockets, nil)
	}
	s.slot = slot
	u.sockets[slot] = s
	ok = true
	return s, nil
}

func (s *Socket) mapRings(off unix.XDPMmapOffsets, fillN, compN, rxN, txN int) error {
	const addrSize, descSize = unsafe.Sizeof(uint64(0)), unsafe.Sizeof(Desc{})
	r, err := mapRing(s.fd, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, uint32(fillN), addrSize)
	if err != nil {
		return fmt.Errorf("fill ring: %w", err)
	}
	s.fill = newFillQueue(r)
	if r, err = mapRing(s.fd, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, uint32(compN), addrSize); err != nil {
		return fmt.Errorf("completion ring: %w", err)
	}
	s.comp = newCompletionQueue(r)
	if r, err = mapRing(s.fd, off.Rx, unix.XDP_PGOFF_RX_RING, uint32(rxN), descSize); err != nil {
		return fmt.Errorf("RX ring: %w", err)
	}
	s.rx = newRxQueue(r)
	if r, err = mapRing(s.fd, off.Tx, unix.XDP_PGOFF_TX_RING, uint32(txN), descSize); err != nil {
		return fmt.Errorf("TX ring: %w", err)
	}
	s.tx = newTxQueue(r)
	return nil
}

func (s *Socket) unmap() {
	s.fill.unmap()
	s.comp.unmap()
	s.rx.unmap()
	s.tx.unmap()
}

// bind binds to the queue: sharing the UMEM of share if there is one (the
// kernel gives the new socket the UMEM's mode and need_wakeup setting),
// otherwise trying zero-copy and then copy mode as cfg.Mode allows.
func (s *Socket) bind(share *Socket, cfg SocketConfig) error {
	if share != nil {
		s.wakeup = share.wakeup
		return s.bindRetry(unix.XDP_SHARED_UMEM, uint32(share.fd))
	}
	var flags uint16
	if !cfg.NoNeedWakeup {
		flags |= unix.XDP_USE_NEED_WAKEUP
		s.wakeup = true
	}
	switch cfg.Mode {
	case BindZeroCopy:
		return s.bindRetry(flags|unix.XDP_ZEROCOPY, 0)
	case BindCopy:
		return s.bindRetry(flags|unix.XDP_COPY, 0)
	}
	zcErr := s.bindRetry(flags|unix.XDP_ZEROCOPY, 0)
	if zcErr == nil {
		return nil
	}
	if err := s.bindRetry(flags|unix.XDP_COPY, 0); err != nil {
		return fmt.Errorf("zero-copy: %v; copy: %w", zcErr, err)
	}
	s.c.zeroCopyFallbacks.Add(1)
	return nil
}

// bindRetry binds, retrying while the queue's previous socket is still
// being released (EBUSY).
func (s *Socket) bindRetry(flags uint16, shareFD uint32) error {
	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(s.ifindex), QueueID: uint32(s.queue), SharedUmemFD: shareFD}
	deadline := time.Now().Add(bindRetryFor)
	for {
		err := unix.Bind(s.fd, sa)
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return err
		}
		s.c.bindRetries.Add(1)
		time.Sleep(bindRetryPause)
	}
}

// FD is the socket's file descriptor, for the XSKMAP and for poll.
func (s *Socket) FD() int { return s.fd }

// Ifindex is the device the socket is bound to.
func (s *Socket) Ifindex() int { return s.ifindex }

// Queue is the device queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// ZeroCopy reports whether the socket is bound in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// NeedWakeup reports whether the socket uses the need_wakeup flags, so that
// syscalls happen only when the kernel asks for them.
func (s *Socket) NeedWakeup() bool { return s.wakeup }

// UMEM is the UMEM the socket's frames live in.
func (s *Socket) UMEM() *UMEM { return s.umem }

// Close unbinds the socket and returns every chunk it had lent to the
// kernel to the UMEM. Frames the application received from it stay in the
// application's hands. Close must not run concurrently with the socket's
// other calls.
func (s *Socket) Close() error {
	u := s.umem
	u.mu.Lock()
	defer u.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	u.sockets[s.slot] = nil
	// Closing the descriptor takes the socket out of every XSKMAP and out
	// of the queue; only then are the lent chunks really back.
	err := unix.Close(s.fd)
	s.unmap()
	for w, word := range s.held {
		for word != 0 {
			b := uint64(w*64) + uint64(bits.TrailingZeros64(word))
			word &= word - 1
			u.put(b << u.shift)
		}
		s.held[w] = 0
	}
	s.heldN = 0
	s.lent.Store(0)
	if err != nil {
		return fmt.Errorf("close AF_XDP socket: %w", err)
	}
	return nil
}
