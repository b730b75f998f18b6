package afxdp

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is the part that the four AF_XDP rings share: the kernel's producer
// and consumer indices, the flags word, and this side's cached copies of
// both indices. The indices are free-running uint32 counters; an entry's slot
// is index&mask, so the difference of two indices is a count even across
// wrap-around.
//
// Ordering: the side that produces writes the entries first and then
// publishes them with an atomic store of the producer index; the side that
// consumes loads the producer index atomically before it reads entries, and
// stores the consumer index only after it has finished reading them. Go's
// atomics are sequentially consistent, which is at least the
// acquire/release pairing that the kernel's smp_load_acquire and
// smp_store_release expect on the other side. Each ring is driven by one
// goroutine at a time (its Socket's), so the cached indices need no lock.
type ring struct {
	producer *uint32
	consumer *uint32
	flags    *uint32
	descs    unsafe.Pointer
	mask     uint32
	size     uint32

	// For a producer ring cachedCons is the kernel's consumer index plus
	// size, so that cachedCons-cachedProd is the free room without a
	// subtraction of size on every call (the same trick as libxdp).
	cachedProd uint32
	cachedCons uint32

	mem []byte // the mapping, for munmap
}

// mapRing maps one ring of fd. entrySize is 8 for the fill and completion
// rings (addresses) and 16 for RX and TX (descriptors).
func mapRing(fd int, off unix.XDPRingOffset, pgoff int64, size uint32, entrySize uintptr) (ring, error) {
	length := int(off.Desc) + int(size)*int(entrySize)
	mem, err := unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, fmt.Errorf("mmap ring at %#x: %w", pgoff, err)
	}
	base := unsafe.Pointer(&mem[0])
	return ring{
		producer: (*uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*uint32)(unsafe.Add(base, off.Consumer)),
		flags:    (*uint32)(unsafe.Add(base, off.Flags)),
		descs:    unsafe.Add(base, off.Desc),
		mask:     size - 1,
		size:     size,
		mem:      mem,
	}, nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

// initProducer primes the cached indices of a ring this side produces to.
func (r *ring) initProducer() {
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer) + r.size
}

// initConsumer primes the cached indices of a ring this side consumes from.
func (r *ring) initConsumer() {
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer)
}

// free returns how many entries can be produced, at most n. It reads the
// kernel's consumer index only when the cached view is not enough, which
// keeps the shared cache line out of the common case.
func (r *ring) free(n uint32) uint32 {
	free := r.cachedCons - r.cachedProd
	if free >= n {
		return n
	}
	r.cachedCons = atomic.LoadUint32(r.consumer) + r.size
	free = r.cachedCons - r.cachedProd
	return min(free, n)
}

// submit publishes the entries written since the last submit.
func (r *ring) submit() { atomic.StoreUint32(r.producer, r.cachedProd) }

// available returns how many entries can be consumed, at most n.
func (r *ring) available(n uint32) uint32 {
	entries := r.cachedProd - r.cachedCons
	if entries == 0 {
		r.cachedProd = atomic.LoadUint32(r.producer)
		entries = r.cachedProd - r.cachedCons
	}
	return min(entries, n)
}

// release hands the entries consumed since the last release back.
func (r *ring) release() { atomic.StoreUint32(r.consumer, r.cachedCons) }

// needWakeup reports whether the kernel asked to be woken for this ring.
func (r *ring) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

func atomicLoad(p *uint32) uint32 { return atomic.LoadUint32(p) }
