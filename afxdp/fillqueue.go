package afxdp

import "unsafe"

// fillQueue is the UMEM fill ring: this side produces chunk addresses, the
// kernel consumes them as buffers for received packets. In copy mode the
// kernel copies a packet into the chunk; in zero-copy mode the driver hands
// the chunk to the NIC.
//
// Producing is reserve, set each entry, commit: the socket checks and marks
// each chunk as it writes it, without a second pass over the batch.
type fillQueue struct {
	ring
	slots []uint64
}

func newFillQueue(r ring) fillQueue {
	r.initProducer()
	return fillQueue{ring: r, slots: unsafe.Slice((*uint64)(r.descs), r.size)}
}

// reserve returns how many of n entries there is room for.
func (q *fillQueue) reserve(n int) int { return int(q.free(uint32(n))) }

// set writes the i-th reserved entry.
func (q *fillQueue) set(i int, addr uint64) { q.slots[(q.cachedProd+uint32(i))&q.mask] = addr }

// commit publishes the first n reserved entries to the kernel.
func (q *fillQueue) commit(n int) {
	q.cachedProd += uint32(n)
	q.submit()
}
