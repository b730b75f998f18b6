package spd

// handles finds an installed policy's entry from its ID, for Delete and
// Get. It is a generational slot table: an ID is a slot index in its low 32
// bits and the slot's generation in its high 32 bits, and a slot whose
// policy is deleted goes on a free list and comes back with the next
// generation, so a stale ID names nothing instead of the slot's next
// policy. Unlike a map it costs no hashing and no rehashing: it grows by
// whole chunks, which never move, so that an insert takes one slot and a
// rebuild updates each moved entry's slot in place. Writers only: it is
// guarded by DB.mu.
type handles struct {
	chunks []*[handleChunk]handle
	n      uint32 // slots in use or freed
	free   uint32 // first free slot + 1; 0 when none
	live   int
}

const handleChunk = 4096

type handle struct {
	e    *Entry // nil when free
	gen  uint32
	next uint32 // next free slot + 1, while free
}

// alloc takes a slot for a new policy and returns its ID. The entry is set
// with set once it exists.
func (h *handles) alloc() ID {
	h.live++
	if h.free != 0 {
		i := h.free - 1
		s := h.slot(i)
		h.free = s.next
		s.next = 0
		return ID(s.gen)<<32 | ID(i)
	}
	i := h.n
	if i%handleChunk == 0 {
		h.chunks = append(h.chunks, new([handleChunk]handle))
	}
	h.n++
	h.slot(i).gen = 1
	return ID(1)<<32 | ID(i)
}

func (h *handles) slot(i uint32) *handle { return &h.chunks[i/handleChunk][i%handleChunk] }

// get is the entry of id, or nil when id names no installed policy.
func (h *handles) get(id ID) *Entry {
	i := uint32(id)
	if i >= h.n || h.slot(i).gen != uint32(id>>32) {
		return nil
	}
	return h.slot(i).e
}

// set points id at e, its new home after a copy.
func (h *handles) set(id ID, e *Entry) { h.slot(uint32(id)).e = e }

// release frees the slot of id, which must be installed.
func (h *handles) release(id ID) {
	i := uint32(id)
	s := h.slot(i)
	s.e = nil
	s.gen++
	if s.gen == 0 {
		// After 2^32 policies in this slot, skip generation 0 so that
		// no ID is 0.
		s.gen = 1
	}
	s.next = h.free
	h.free = i + 1
	h.live--
}
