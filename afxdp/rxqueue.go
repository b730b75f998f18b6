package afxdp

import "unsafe"

// rxQueue is a socket's RX ring: the kernel produces descriptors of
// received packets (chunk address plus offset, and length), this side
// consumes them.
type rxQueue struct {
	ring
	slots []Desc
}

func newRxQueue(r ring) rxQueue {
	r.initConsumer()
	return rxQueue{ring: r, slots: unsafe.Slice((*Desc)(r.descs), r.size)}
}

// consume takes up to len(descs) received descriptors and returns how many.
func (q *rxQueue) consume(descs []Desc) int {
	n := q.available(uint32(len(descs)))
	if n == 0 {
		return 0
	}
	cons := q.cachedCons
	for i := range n {
		descs[i] = q.slots[(cons+i)&q.mask]
	}
	q.cachedCons = cons + n
	q.release()
	return int(n)
}
