package afxdp

import "unsafe"

// completionQueue is the UMEM completion ring: the kernel produces the
// chunk addresses of transmitted frames, this side consumes them and so
// gets the chunks back.
type completionQueue struct {
	ring
	slots []uint64
}

func newCompletionQueue(r ring) completionQueue {
	r.initConsumer()
	return completionQueue{ring: r, slots: unsafe.Slice((*uint64)(r.descs), r.size)}
}

// consume takes up to len(addrs) completed addresses and returns how many.
func (q *completionQueue) consume(addrs []uint64) int {
	n := q.available(uint32(len(addrs)))
	if n == 0 {
		return 0
	}
	cons := q.cachedCons
	for i := range n {
		addrs[i] = q.slots[(cons+i)&q.mask]
	}
	q.cachedCons = cons + n
	q.release()
	return int(n)
}
