package afxdp

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// KernelHeadroom is the space the kernel keeps before every received packet
// (XDP_PACKET_HEADROOM): in copy mode received data starts this many bytes,
// plus UMEMConfig.Headroom, into its chunk.
const KernelHeadroom = unix.XDP_PACKET_HEADROOM

// Defaults for a zero UMEMConfig.
const (
	DefaultFrameSize = 4096
	DefaultNumFrames = 4096
)

// UMEMConfig sizes a UMEM.
type UMEMConfig struct {
	// FrameSize is the chunk size, 2048 or 4096 (aligned mode only). 0 means
	// DefaultFrameSize.
	FrameSize int
	// NumFrames is the number of chunks. 0 means DefaultNumFrames. It must
	// cover every socket's fill ring plus the frames in flight on TX, or
	// receive will run dry.
	NumFrames int
	// Headroom is extra room the kernel leaves before received data, beyond
	// KernelHeadroom, for headers a worker adds in place (ESP
	// encapsulation). KernelHeadroom alone already fits an outer IPv6, UDP
	// and ESP header with IV.
	Headroom int
}

// UMEM is a packet buffer area shared by any number of sockets, on any
// queues of any devices: a frame received on one socket can be transmitted
// on another without a copy.
//
// Every chunk is always in exactly one place: free in the UMEM, lent to the
// kernel by one socket (fill ring, in the driver, RX ring; or TX ring,
// completion ring), or in the hands of the application between Receive (or
// Alloc) and Transmit, Recycle or Free. Sockets record which chunks they
// lent to the kernel, so closing a socket returns exactly those to the
// UMEM; see Accounting.
type UMEM struct {
	area      []byte
	frameSize uint64
	shift     uint
	numFrames int
	headroom  int

	mu sync.Mutex
	// free holds the chunk addresses that nobody holds. Guarded by mu;
	// workers take and return them in batches, one lock per batch.
	free []uint64
	// isFree has bit i set while chunk i is on free, so that a double free
	// is refused instead of putting a chunk in two places. Guarded by mu.
	isFree bitmap
	// sockets are the bound sockets by slot; nil slots are reusable.
	// Guarded by mu.
	sockets []*Socket
	closed  bool // guarded by mu

	badFree atomic.Uint64 // Free of an address outside the area
}

// NewUMEM maps an anonymous, pre-faulted area for cfg.NumFrames chunks and
// puts every chunk on the free list. The area is registered with the kernel
// when the first socket is opened on it.
func NewUMEM(cfg UMEMConfig) (*UMEM, error) {
	if cfg.FrameSize == 0 {
		cfg.FrameSize = DefaultFrameSize
	}
	if cfg.NumFrames == 0 {
		cfg.NumFrames = DefaultNumFrames
	}
	if cfg.FrameSize != 2048 && cfg.FrameSize != 4096 {
		return nil, fmt.Errorf("frame size %d, want 2048 or 4096: %w", cfg.FrameSize, ErrConfig)
	}
	if cfg.NumFrames < 1 || cfg.NumFrames > 1<<24 {
		return nil, fmt.Errorf("%d frames: %w", cfg.NumFrames, ErrConfig)
	}
	// Leave at least a full Ethernet frame after the headroom.
	if cfg.Headroom < 0 || KernelHeadroom+cfg.Headroom+1514 > cfg.FrameSize {
		return nil, fmt.Errorf("headroom %d in %d-byte frames: %w", cfg.Headroom, cfg.FrameSize, ErrConfig)
	}
	area, err := unix.Mmap(-1, 0, cfg.FrameSize*cfg.NumFrames,
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap UMEM of %d frames: %w", cfg.NumFrames, err)
	}
	u := &UMEM{
		area:      area,
		frameSize: uint64(cfg.FrameSize),
		shift:     uint(bits.TrailingZeros(uint(cfg.FrameSize))),
		numFrames: cfg.NumFrames,
		headroom:  cfg.Headroom,
		free:      make([]uint64, cfg.NumFrames),
		isFree:    newBitmap(cfg.NumFrames),
	}
	// Hand out low addresses first: the stack pops from the end.
	for i := range u.free {
		u.free[i] = uint64(cfg.NumFrames-1-i) << u.shift
		u.isFree.set(uint64(i))
	}
	return u, nil
}

// FrameSize is the chunk size in bytes.
func (u *UMEM) FrameSize() int { return int(u.frameSize) }

// NumFrames is the number of chunks.
func (u *UMEM) NumFrames() int { return u.numFrames }

// RxOffset is where received packets start in their chunk in copy mode
// (KernelHeadroom plus the configured headroom); zero-copy drivers do the
// same. Frames made by the application may start anywhere.
func (u *UMEM) RxOffset() int { return KernelHeadroom + u.headroom }

// Alloc moves up to len(addrs) free chunks into the caller's hands, for
// packets the application makes itself, and returns how many it got. The
// addresses are chunk starts.
func (u *UMEM) Alloc(addrs []uint64) int {
	u.mu.Lock()
	n := u.take(addrs)
	u.mu.Unlock()
	return n
}

// take pops up to len(addrs) free chunks. Caller holds mu.
func (u *UMEM) take(addrs []uint64) int {
	n := min(len(addrs), len(u.free))
	copy(addrs, u.free[len(u.free)-n:])
	u.free = u.free[:len(u.free)-n]
	for _, a := range addrs[:n] {
		u.isFree.clear(a >> u.shift)
	}
	return n
}

// Free gives the chunks of descs back to the UMEM; the caller must hold
// them (from Receive or Alloc) and must not use them afterwards.
func (u *UMEM) Free(descs []Desc) {
	u.mu.Lock()
	for _, d := range descs {
		u.put(d.Addr)
	}
	u.mu.Unlock()
}

// FreeAddrs is Free for chunk addresses.
func (u *UMEM) FreeAddrs(addrs []uint64) {
	u.mu.Lock()
	for _, a := range addrs {
		u.put(a)
	}
	u.mu.Unlock()
}

// put pushes the chunk of addr on the free list. Caller holds mu. A chunk
// that is already free, or an address outside the area, is counted and
// ignored rather than corrupting the list.
func (u *UMEM) put(addr uint64) {
	i := addr >> u.shift
	if addr >= uint64(len(u.area)) || u.isFree.has(i) {
		u.badFree.Add(1)
		return
	}
	u.isFree.set(i)
	u.free = append(u.free, i<<u.shift)
}

// Accounting says where the UMEM's chunks are. Free + Kernel + InHand is
// always NumFrames; InHand is what the application holds, derived as the
// rest. Sockets publish their part once per batch, so the split is exact
// only while no worker runs (tests, shutdown); BadFrees counts frees that
// were refused (double frees, addresses outside the area).
type Accounting struct {
	Frames   int
	Free     int
	Kernel   int // lent to the kernel by sockets: fill, RX, TX, completion
	InHand   int
	BadFrees uint64
}

// Accounting reports where the chunks are now.
func (u *UMEM) Accounting() Accounting {
	u.mu.Lock()
	a := Accounting{Frames: u.numFrames, Free: len(u.free)}
	for _, s := range u.sockets {
		if s != nil {
			a.Kernel += int(s.lent.Load())
		}
	}
	u.mu.Unlock()
	a.InHand = a.Frames - a.Free - a.Kernel
	a.BadFrees = u.badFree.Load()
	return a
}

// Close unmaps the area. Every socket on it must be closed first, and no
// view returned by Data or Chunk may be used afterwards.
func (u *UMEM) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	for _, s := range u.sockets {
		if s != nil {
			return fmt.Errorf("close UMEM: %w", ErrUMEMBusy)
		}
	}
	u.closed = true
	if err := unix.Munmap(u.area); err != nil {
		return fmt.Errorf("munmap UMEM: %w", err)
	}
	return nil
}
