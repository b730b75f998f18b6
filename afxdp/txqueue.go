package afxdp

import "unsafe"

// txQueue is a socket's TX ring: this side produces descriptors of frames
// to send, the kernel consumes them and later returns each chunk through
// the completion ring. Producing is reserve, set, commit, as for the fill
// ring.
type txQueue struct {
	ring
	slots []Desc
}

func newTxQueue(r ring) txQueue {
	r.initProducer()
	return txQueue{ring: r, slots: unsafe.Slice((*Desc)(r.descs), r.size)}
}

// reserve returns how many of n entries there is room for.
func (q *txQueue) reserve(n int) int { return int(q.free(uint32(n))) }

// set writes the i-th reserved entry.
func (q *txQueue) set(i int, d Desc) { q.slots[(q.cachedProd+uint32(i))&q.mask] = d }

// commit publishes the first n reserved entries to the kernel.
func (q *txQueue) commit(n int) {
	q.cachedProd += uint32(n)
	q.submit()
}

// queued is how many published entries the kernel has not consumed yet.
func (q *txQueue) queued() uint32 { return q.cachedProd - atomicLoad(q.consumer) }
