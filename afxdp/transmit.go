package afxdp

// Transmit posts as many of descs as the TX ring has room for and returns
// how many: descs[:n] are given up (their chunks come back through the
// completion ring), descs[n:] are still the caller's, to retry or free.
// The frames may have been received on any socket of the same UMEM. It
// first reaps completions, and wakes the kernel when it asks to be (always
// in copy mode on veth, where sending happens inside that sendto).
func (s *Socket) Transmit(descs []Desc) int {
	s.Complete()
	u := s.umem
	n := s.tx.reserve(len(descs))
	k := 0
	for _, d := range descs[:n] {
		i := u.frameIndex(d.Addr)
		if i >= uint64(u.numFrames) || s.held.has(i) {
			// Not a chunk of ours, or one already lent: the caller did not
			// hold it, so there is nothing to give back.
			s.c.txInvalid.Add(1)
			continue
		}
		if (d.Addr&(u.frameSize-1))+uint64(d.Len) > u.frameSize {
			// Runs over the chunk end: the kernel would reject it. The
			// chunk was the caller's, so it goes back to the UMEM.
			s.c.txInvalid.Add(1)
			u.FreeAddrs([]uint64{d.Addr})
			continue
		}
		s.held.set(i)
		s.tx.set(k, Desc{Addr: d.Addr, Len: d.Len})
		k++
	}
	if k > 0 {
		s.tx.commit(k)
		s.heldN += k
		s.lent.Store(int64(s.heldN))
		s.c.txPackets.Add(uint64(k))
	}
	s.Kick()
	return n
}

// Kick wakes the kernel to send what is on the TX ring, if anything is and
// the kernel wants a wakeup. Errors are transient (EAGAIN: the kernel sent
// its budget and wants another kick; ENOBUFS: no memory for an skb; EBUSY:
// device queue busy; ENETDOWN: link down): they are counted, and the next
// Transmit or Kick tries again.
func (s *Socket) Kick() {
	if s.tx.queued() == 0 || (s.wakeup && !s.tx.needWakeup()) {
		return
	}
	s.c.txWakeups.Add(1)
	if errno := wakeTx(s.fd); errno != 0 {
		s.c.wakeupError(errno)
	}
}

// Complete reaps the completion ring and returns the sent chunks to the
// UMEM's free list, one lock per batch. It returns how many it reaped.
func (s *Socket) Complete() int {
	n := s.comp.consume(s.scratch)
	if n == 0 {
		return 0
	}
	u := s.umem
	k := 0
	for _, a := range s.scratch[:n] {
		i := u.frameIndex(a)
		if i >= uint64(u.numFrames) || !s.held.has(i) {
			s.c.completionInvalid.Add(1)
			continue
		}
		s.held.clear(i)
		s.scratch[k] = a
		k++
	}
	s.heldN -= k
	s.lent.Store(int64(s.heldN))
	u.FreeAddrs(s.scratch[:k])
	s.c.completed.Add(uint64(k))
	return n
}
