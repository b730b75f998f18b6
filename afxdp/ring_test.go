package afxdp

import (
	"sync/atomic"
	"testing"
	"unsafe"
)

// fakeKernel stands in for the kernel side of a socket's four rings, in
// ordinary memory, so that the ring and accounting logic can be tested and
// benchmarked without root.
type fakeKernel struct {
	fill, comp, rx, tx *ring
	mem                [][]uint64
}

func fakeRing(k *fakeKernel, size uint32, entry uintptr) ring {
	hdr := make([]uint64, 3)
	body := make([]uint64, uintptr(size)*entry/8)
	k.mem = append(k.mem, hdr, body)
	return ring{
		producer: (*uint32)(unsafe.Pointer(&hdr[0])),
		consumer: (*uint32)(unsafe.Pointer(&hdr[1])),
		flags:    (*uint32)(unsafe.Pointer(&hdr[2])),
		descs:    unsafe.Pointer(&body[0]),
		mask:     size - 1,
		size:     size,
	}
}

// newFakeSocket makes a socket on u whose rings a fakeKernel serves. The
// ring indices start near the uint32 limit so that every test crosses the
// wrap-around.
func newFakeSocket(t testing.TB, u *UMEM, size uint32) (*Socket, *fakeKernel) {
	t.Helper()
	k := &fakeKernel{}
	rings := [4]ring{fakeRing(k, size, 8), fakeRing(k, size, 8), fakeRing(k, size, 16), fakeRing(k, size, 16)}
	for i := range rings {
		*rings[i].producer = ^uint32(0) - 5
		*rings[i].consumer = ^uint32(0) - 5
	}
	s := &Socket{fd: -1, umem: u, wakeup: true, held: newBitmap(u.numFrames), scratch: make([]uint64, size)}
	s.fill = newFillQueue(rings[0])
	s.comp = newCompletionQueue(rings[1])
	s.rx = newRxQueue(rings[2])
	s.tx = newTxQueue(rings[3])
	k.fill, k.comp, k.rx, k.tx = &s.fill.ring, &s.comp.ring, &s.rx.ring, &s.tx.ring
	u.mu.Lock()
	s.slot = len(u.sockets)
	u.sockets = append(u.sockets, s)
	u.mu.Unlock()
	t.Cleanup(func() {
		u.mu.Lock()
		u.sockets[s.slot] = nil
		u.mu.Unlock()
	})
	return s, k
}

// receive moves up to n buffers from the fill ring to the RX ring as
// packets of length l at u's RX offset, as the kernel does on receive.
func (k *fakeKernel) receive(u *UMEM, n int, l uint32) int {
	fp, fc := atomic.LoadUint32(k.fill.producer), atomic.LoadUint32(k.fill.consumer)
	rp, rc := atomic.LoadUint32(k.rx.producer), atomic.LoadUint32(k.rx.consumer)
	fillSlots := unsafe.Slice((*uint64)(k.fill.descs), k.fill.size)
	rxSlots := unsafe.Slice((*Desc)(k.rx.descs), k.rx.size)
	done := 0
	for done < n && fp != fc && rp-rc < k.rx.size {
		addr := fillSlots[fc&k.fill.mask]
		rxSlots[rp&k.rx.mask] = Desc{Addr: addr + uint64(u.RxOffset()), Len: l}
		fc++
		rp++
		done++
	}
	atomic.StoreUint32(k.fill.consumer, fc)
	atomic.StoreUint32(k.rx.producer, rp)
	return done
}

// transmit moves every TX descriptor to the completion ring.
func (k *fakeKernel) transmit() int {
	tp, tc := atomic.LoadUint32(k.tx.producer), atomic.LoadUint32(k.tx.consumer)
	cp, cc := atomic.LoadUint32(k.comp.producer), atomic.LoadUint32(k.comp.consumer)
	txSlots := unsafe.Slice((*Desc)(k.tx.descs), k.tx.size)
	compSlots := unsafe.Slice((*uint64)(k.comp.descs), k.comp.size)
	done := 0
	for tp != tc && cp-cc < k.comp.size {
		compSlots[cp&k.comp.mask] = txSlots[tc&k.tx.mask].Addr
		tc++
		cp++
		done++
	}
	atomic.StoreUint32(k.tx.consumer, tc)
	atomic.StoreUint32(k.comp.producer, cp)
	return done
}

func TestRingsAndAccounting(t *testing.T) {
	u := newTestUMEM(t, UMEMConfig{FrameSize: 2048, NumFrames: 64})
	s, k := newFakeSocket(t, u, 16)
	if n := s.Refill(); n != 16 {
		t.Fatalf("Refill %d, want 16", n)
	}
	if n := s.Refill(); n != 0 {
		t.Fatalf("second Refill %d, want 0", n)
	}
	checkAccounting(t, u, 0)
	descs := make([]Desc, 8)
	total := 0
	for round := range 40 { // many times around the rings and past 2^32
		if got := k.receive(u, 5+round%7, 60); got == 0 {
			t.Fatalf("round %d: kernel found no fill buffers", round)
		}
		n := s.Receive(descs)
		for _, d := range descs[:n] {
			if d.Addr%2048 != uint64(u.RxOffset()) || d.Len != 60 {
				t.Fatalf("received %+v", d)
			}
		}
		total += n
		a := checkAccounting(t, u, n)
		if a.Kernel+n != s.heldN+n {
			t.Fatalf("lent %d, held %d", a.Kernel, s.heldN)
		}
		// Half go out on TX, half straight back to fill.
		h := n / 2
		if sent := s.Transmit(descs[:h]); sent != h {
			t.Fatalf("Transmit %d of %d", sent, h)
		}
		if r := s.Recycle(descs[h:n]); r != n-h {
			t.Fatalf("Recycle %d of %d", r, n-h)
		}
		k.transmit()
		s.Complete()
		s.Refill()
		checkAccounting(t, u, 0)
	}
	// Errors that must not lose or duplicate chunks.
	var one [1]uint64
	if u.Alloc(one[:]) != 1 {
		t.Fatal("Alloc")
	}
	u.FreeAddrs(one[:])
	u.FreeAddrs(one[:]) // double free: refused
	if a := u.Accounting(); a.BadFrees != 1 || a.Free+a.Kernel != a.Frames {
		t.Errorf("after a double free: %+v", a)
	}
	st, _ := s.Stats()
	if st.RxPackets != uint64(total) || st.Completed != st.TxPackets {
		t.Errorf("stats %+v after %d received", st, total)
	}
}

func TestTransmitRefusesBadDescs(t *testing.T) {
	u := newTestUMEM(t, UMEMConfig{FrameSize: 2048, NumFrames: 8})
	s, _ := newFakeSocket(t, u, 8)
	addrs := make([]uint64, 2)
	u.Alloc(addrs)
	bad := []Desc{
		{Addr: 1 << 40, Len: 60},          // outside the UMEM
		{Addr: addrs[0] + 2000, Len: 100}, // over the chunk end
		{Addr: addrs[1] + 256, Len: 60},   // good
		{Addr: addrs[1] + 256, Len: 60},   // already lent
	}
	if n := s.Transmit(bad); n != 4 {
		t.Fatalf("Transmit took %d", n)
	}
	st, _ := s.Stats()
	if st.TxInvalid != 3 || st.TxPackets != 1 {
		t.Errorf("stats %+v", st)
	}
	checkAccounting(t, u, 0)
}

func TestUMEMConfig(t *testing.T) {
	for _, c := range []UMEMConfig{{FrameSize: 1024}, {FrameSize: 3000}, {NumFrames: -1}, {FrameSize: 2048, Headroom: 512}} {
		if u, err := NewUMEM(c); err == nil {
			u.Close()
			t.Errorf("NewUMEM(%+v) accepted", c)
		}
	}
	if _, _, _, _, err := (&SocketConfig{RxSize: 100}).sizes(); err == nil {
		t.Error("ring size 100 accepted")
	}
}

// TestHotPathAllocs: receive, transmit, complete, recycle and refill
// allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	u := newTestUMEM(t, UMEMConfig{NumFrames: 256})
	s, k := newFakeSocket(t, u, 64)
	s.Refill()
	descs := make([]Desc, 32)
	allocs := testing.AllocsPerRun(100, func() {
		k.receive(u, 32, 64)
		n := s.Receive(descs)
		h := n / 2
		s.Transmit(descs[:h])
		s.Recycle(descs[h:n])
		k.transmit()
		s.Complete()
		s.Refill()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}

// BenchmarkRxDropRings measures this side's cost per packet of receiving
// and recycling, against a fake kernel (no syscalls, no copies).
func BenchmarkRxDropRings(b *testing.B) {
	u := newTestUMEM(b, UMEMConfig{NumFrames: 4096})
	s, k := newFakeSocket(b, u, 2048)
	s.Refill()
	descs := make([]Desc, 64)
	b.ReportAllocs()
	pkts := 0
	for b.Loop() {
		k.receive(u, 64, 64)
		n := s.Receive(descs)
		s.Recycle(descs[:n])
		pkts += n
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// BenchmarkL2FwdRings is the same for receive, transmit and completion.
func BenchmarkL2FwdRings(b *testing.B) {
	u := newTestUMEM(b, UMEMConfig{NumFrames: 4096})
	s, k := newFakeSocket(b, u, 2048)
	s.Refill()
	descs := make([]Desc, 64)
	b.ReportAllocs()
	pkts := 0
	for b.Loop() {
		k.receive(u, 64, 64)
		n := s.Receive(descs)
		s.Transmit(descs[:n])
		k.transmit()
		s.Refill()
		pkts += n
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds()/1e6, "Mpps")
}
