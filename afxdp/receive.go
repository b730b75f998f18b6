package afxdp

import "golang.org/x/sys/unix"

// refillMin is the least room in the fill ring worth taking the UMEM lock
// for, unless the socket has lent the kernel nothing at all.
const refillMin = 32

// Receive moves up to len(descs) received packets from the RX ring into
// descs and into the caller's hands, and returns how many. The caller then
// transmits each frame (on any socket of the UMEM), recycles it into a fill
// ring, or frees it. When nothing arrived and the kernel asked to be woken
// for the fill ring, Receive wakes it.
func (s *Socket) Receive(descs []Desc) int {
	n := s.rx.consume(descs)
	if n == 0 {
		if s.wakeup && s.fill.needWakeup() {
			s.c.rxWakeups.Add(1)
			if errno := wakeRx(s.fd); errno != 0 {
				s.c.wakeupError(errno)
			}
		}
		return 0
	}
	u := s.umem
	k := 0
	for _, d := range descs[:n] {
		i := u.frameIndex(d.Addr)
		if i >= uint64(u.numFrames) {
			// Not a chunk of ours: the kernel validates addresses, so this
			// is a bug somewhere. Never hand it out.
			s.c.rxInvalid.Add(1)
			continue
		}
		if s.held.has(i) {
			s.held.clear(i)
			s.heldN--
		} else {
			// Received a chunk this socket did not lend: still hand it
			// out (it is in the caller's hands now), but count it.
			s.c.rxInvalid.Add(1)
		}
		descs[k] = d
		k++
	}
	s.lent.Store(int64(s.heldN))
	s.c.rxPackets.Add(uint64(k))
	return k
}

// Recycle posts the chunks of frames in the caller's hands to this
// socket's fill ring, as buffers for packets to come, and returns how many
// it took: descs[:n] are given up, descs[n:] are still the caller's. It
// takes no lock, which makes it the cheapest way to drop received packets.
func (s *Socket) Recycle(descs []Desc) int {
	u := s.umem
	n := s.fill.reserve(len(descs))
	k := 0
	for _, d := range descs[:n] {
		i := u.frameIndex(d.Addr)
		if i >= uint64(u.numFrames) || s.held.has(i) {
			s.c.fillInvalid.Add(1)
			continue
		}
		s.held.set(i)
		s.fill.set(k, i<<u.shift)
		k++
	}
	s.fill.commit(k)
	s.heldN += k
	s.lent.Store(int64(s.heldN))
	return n
}

// Refill tops the fill ring up from the UMEM's free chunks and returns how
// many it posted. It does nothing while the ring is nearly full, so that
// calling it once per batch costs no lock in the common case.
func (s *Socket) Refill() int {
	room := s.fill.reserve(len(s.scratch))
	if room == 0 || (room < refillMin && s.heldN > 0) {
		return 0
	}
	u := s.umem
	u.mu.Lock()
	n := u.take(s.scratch[:room])
	u.mu.Unlock()
	for k, a := range s.scratch[:n] {
		s.held.set(u.frameIndex(a))
		s.fill.set(k, a)
	}
	s.fill.commit(n)
	s.heldN += n
	s.lent.Store(int64(s.heldN))
	return n
}

// Wait blocks until the RX ring has packets, or the timeout passes (a
// negative timeout waits for ever), and reports whether packets are there.
// Unlike the wakeups it uses a blocking poll, which rightly lets the
// scheduler run other goroutines on this P meanwhile.
func (s *Socket) Wait(timeoutMS int) (bool, error) {
	if s.rx.available(1) > 0 {
		return true, nil
	}
	s.pollfd[0].Revents = 0
	n, err := unix.Poll(s.pollfd[:], timeoutMS)
	if err != nil {
		if err == unix.EINTR {
			return false, nil
		}
		return false, err
	}
	return n > 0 && s.pollfd[0].Revents&unix.POLLIN != 0, nil
}
