package afxdp

import (
	"testing"
	"time"
)

// TestBurstAccounting sends a burst far larger than the rings while the
// socket does not read, then reads what arrived: every frame the peer sent
// is either received or counted by the kernel (the socket's drop counters,
// or the veth's), and every chunk is accounted for before and after Close.
func TestBurstAccounting(t *testing.T) {
	requireNetns(t)
	// A fill ring smaller than the RX ring runs dry; a larger one finds
	// the RX ring full.
	t.Run("fill ring empty", func(t *testing.T) { testBurst(t, 64, 128) })
	t.Run("rx ring full", func(t *testing.T) { testBurst(t, 128, 64) })
}

func testBurst(t *testing.T, fill, ring int) {
	gw, peer := newNetns(t), newNetns(t)
	veth(t, gw, "g0", peer, "p0", 1)
	gwMAC := gw.mac(t, "g0")
	u := newTestUMEM(t, UMEMConfig{NumFrames: 256})
	p := newTestProgram(t, Protected)
	attach(t, gw, p, "g0")
	s := openSocket(t, gw, u, gw.ifindex(t, "g0"), 0, SocketConfig{FillSize: fill, CompletionSize: ring, RxSize: ring, TxSize: ring})
	if n := s.Refill(); n != fill {
		t.Fatalf("Refill posted %d, want %d", n, fill)
	}
	if err := p.SetSocket(s); err != nil {
		t.Fatal(err)
	}
	_, peerTx0 := peer.linkStats(t, "p0")
	gwRx0, _ := gw.linkStats(t, "g0")

	ps := openPacketSocket(t, peer, "p0")
	const burst = 4000
	for i := range burst {
		f := ethFrame(gwMAC, macB, 0x0800, ipv4Packet(peer4, far4, 50, nil, espPayload(uint32(0x3000+i%64), uint32(i), 32)))
		if err := ps.send(f); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	checkAccounting(t, u, 0)

	received := 0
	descs := make([]Desc, 32)
	for quiet := time.Now().Add(200 * time.Millisecond); time.Now().Before(quiet); {
		n := s.Receive(descs)
		if n > 0 {
			quiet = time.Now().Add(200 * time.Millisecond)
		}
		received += n
		if got := s.Recycle(descs[:n]); got != n {
			t.Fatalf("Recycle took %d of %d", got, n)
		}
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	_, peerTx := peer.linkStats(t, "p0")
	gwRx, _ := gw.linkStats(t, "g0")
	// Two places can drop: the peer's veth, when the receiving queue's
	// backlog is full (before XDP runs), and the socket, when it has no
	// fill buffer or no RX slot; veth counts the latter again as an XDP
	// drop in g0's rx_dropped.
	backlogDropped := peerTx.Dropped - peerTx0.Dropped
	xdpDropped := gwRx.Dropped - gwRx0.Dropped
	k := st.Kernel
	t.Logf("sent %d: received %d, socket rx_dropped %d, rx_ring_full %d (fill ring empty %d times), veth backlog drops %d, XDP drops %d",
		burst, received, k.RxDropped, k.RxRingFull, k.RxFillRingEmpty, backlogDropped, xdpDropped)
	if received != min(ring, fill) {
		t.Errorf("received %d, want %d", received, min(ring, fill))
	}
	if received+int(k.RxDropped+k.RxRingFull+backlogDropped) != burst {
		t.Errorf("%d sent, but %d received + %d + %d dropped by the socket + %d by veth",
			burst, received, k.RxDropped, k.RxRingFull, backlogDropped)
	}
	if xdpDropped != k.RxDropped+k.RxRingFull {
		t.Errorf("veth counts %d XDP drops, the socket %d", xdpDropped, k.RxDropped+k.RxRingFull)
	}
	if fill < ring && (k.RxDropped == 0 || k.RxFillRingEmpty == 0) || fill > ring && k.RxRingFull == 0 {
		t.Errorf("burst did not show in the expected counter: %+v", k)
	}
	if a := checkAccounting(t, u, 0); a.Kernel != fill {
		t.Errorf("after the burst %d chunks lent to the kernel, want the fill ring's %d", a.Kernel, fill)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if a := checkAccounting(t, u, 0); a.Free != a.Frames {
		t.Errorf("after Close %d of %d chunks free", a.Free, a.Frames)
	}
}
