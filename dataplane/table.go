package dataplane

import (
	"sync"
	"sync/atomic"
)

// table maps uint64 keys to values for readers that take no lock and do
// not allocate, while one writer at a time (under mu) adds and removes:
// the SAD by SPI and by request ID. It is open addressing with linear
// probing over slots of atomic pointers to immutable nodes; a reader sees
// each slot either before or after a writer's store, never half of it.
// Removal leaves a tombstone so that probe chains stay intact; a table
// that fills up with entries and tombstones is rebuilt into a new slot
// array, published with one atomic store, and readers still on the old
// array finish on it.
type table[V any] struct {
	mu    sync.Mutex
	slots atomic.Pointer[slotArray[V]]
	n     int // live entries, guarded by mu
	used  int // live entries plus tombstones in the current array
}

type node[V any] struct {
	key uint64
	v   *V // nil marks a tombstone
}

type slotArray[V any] struct {
	s    []atomic.Pointer[node[V]]
	mask uint64
}

// mix spreads SPIs and request IDs, which are often sequential, over the
// slots (the finaliser of SplitMix64).
func mixKey(k uint64) uint64 {
	k ^= k >> 30
	k *= 0xbf58476d1ce4e5b9
	k ^= k >> 27
	k *= 0x94d049bb133111eb
	return k ^ k>>31
}

func newSlotArray[V any](n int) *slotArray[V] {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return &slotArray[V]{s: make([]atomic.Pointer[node[V]], size), mask: uint64(size - 1)}
}

// get returns the value for key, or nil.
func (t *table[V]) get(key uint64) *V {
	a := t.slots.Load()
	if a == nil {
		return nil
	}
	for i := mixKey(key); ; i++ {
		nd := a.s[i&a.mask].Load()
		if nd == nil {
			return nil
		}
		if nd.key == key && nd.v != nil {
			return nd.v
		}
	}
}

// put stores v under key, replacing any value there, and returns the
// value it replaced. The caller holds mu.
func (t *table[V]) put(key uint64, v *V) (old *V) {
	a := t.slots.Load()
	if a == nil || 4*(t.used+1) > 3*len(a.s) {
		a = t.rebuild(t.n + 1)
	}
	free := -1
	for i := mixKey(key); ; i++ {
		j := int(i & a.mask)
		nd := a.s[j].Load()
		if nd == nil {
			if free < 0 {
				free = j
				t.used++
			}
			break
		}
		if nd.v == nil {
			if free < 0 {
				free = j
			}
			continue
		}
		if nd.key == key {
			a.s[j].Store(&node[V]{key: key, v: v})
			return nd.v
		}
	}
	a.s[free].Store(&node[V]{key: key, v: v})
	t.n++
	return nil
}

// del removes key and returns its value, or nil. The caller holds mu.
func (t *table[V]) del(key uint64) *V {
	a := t.slots.Load()
	if a == nil {
		return nil
	}
	for i := mixKey(key); ; i++ {
		j := int(i & a.mask)
		nd := a.s[j].Load()
		if nd == nil {
			return nil
		}
		if nd.key == key && nd.v != nil {
			a.s[j].Store(&node[V]{key: key})
			t.n--
			return nd.v
		}
	}
}

// rebuild copies the live entries into a new array sized for n and
// publishes it. The caller holds mu.
func (t *table[V]) rebuild(n int) *slotArray[V] {
	b := newSlotArray[V](n)
	if a := t.slots.Load(); a != nil {
		for i := range a.s {
			nd := a.s[i].Load()
			if nd == nil || nd.v == nil {
				continue
			}
			for k := mixKey(nd.key); ; k++ {
				if b.s[k&b.mask].Load() == nil {
					b.s[k&b.mask].Store(nd)
					break
				}
			}
		}
	}
	t.used = t.n
	t.slots.Store(b)
	return b
}
