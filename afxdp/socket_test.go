package afxdp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testEtherType marks frames that tests make for TX (IEEE local
// experimental 1).
const testEtherType = 0x88b5

// attach attaches p to dev in namespace n, and reports the mode.
func attach(t testing.TB, n *netns, p *Program, dev string) AttachMode {
	t.Helper()
	idx := n.ifindex(t, dev)
	var mode AttachMode
	n.must(t, func() error {
		var err error
		mode, err = p.Attach(idx)
		return err
	})
	t.Logf("%s program on %s: %s XDP", p.Side(), dev, mode)
	return mode
}

// checkAccounting fails the test unless every chunk of u is free or lent
// to the kernel, with inHand in the application's hands and no refused
// frees.
func checkAccounting(t testing.TB, u *UMEM, inHand int) Accounting {
	t.Helper()
	a := u.Accounting()
	if a.Free+a.Kernel+a.InHand != a.Frames || a.InHand != inHand || a.BadFrees != 0 || a.Free < 0 || a.Kernel < 0 {
		t.Errorf("accounting %+v, want %d in hand", a, inHand)
	}
	return a
}

// TestRxTxEveryQueue binds a socket to every queue of a two-queue veth,
// receives on each (the sender's flow hash picks the queue), checks the
// bytes and where they start, and transmits from each.
func TestRxTxEveryQueue(t *testing.T) {
	requireNetns(t)
	gw, peer := newNetns(t), newNetns(t)
	const queues = 2
	veth(t, gw, "g0", peer, "p0", queues)
	var nq int
	gw.must(t, func() error { var err error; nq, err = QueueCount("g0"); return err })
	if nq != queues {
		t.Fatalf("QueueCount = %d, want %d", nq, queues)
	}
	ifindex := gw.ifindex(t, "g0")
	gwMAC := gw.mac(t, "g0")

	u := newTestUMEM(t, UMEMConfig{FrameSize: 2048, NumFrames: 1024})
	p := newTestProgram(t, Unprotected)
	attach(t, gw, p, "g0")
	socks := make([]*Socket, queues)
	for q := range socks {
		socks[q] = openSocket(t, gw, u, ifindex, q, SocketConfig{FillSize: 256, CompletionSize: 256, RxSize: 256, TxSize: 256})
		if socks[q].ZeroCopy() {
			t.Errorf("queue %d: zero-copy on veth", q)
		}
		if n := socks[q].Refill(); n != 256 {
			t.Fatalf("queue %d: Refill posted %d, want 256", q, n)
		}
		if err := p.SetSocket(socks[q]); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("bound %d queues, zero-copy %v, need_wakeup %v", queues, socks[0].ZeroCopy(), socks[0].NeedWakeup())
	checkAccounting(t, u, 0)

	// RX: ESP flows with different SPIs until every queue has had some.
	ps := openPacketSocket(t, peer, "p0")
	sent := map[uint32][]byte{}
	perQueue := make([]int, queues)
	descs := make([]Desc, 64)
	deadline := time.Now().Add(10 * time.Second)
	for spi := uint32(0x100); ; spi++ {
		done := true
		for _, n := range perQueue {
			done = done && n >= 8
		}
		if done {
			break
		}
		if spi > 0x100+4000 || time.Now().After(deadline) {
			t.Fatalf("after %d flows, packets per queue %v", spi-0x100, perQueue)
		}
		f := ethFrame(gwMAC, macB, 0x0800, ipv4Packet(peer4, far4, 50, nil, espPayload(spi, 1, 64)))
		sent[spi] = f
		if err := ps.send(f); err != nil {
			t.Fatal(err)
		}
		for wait := time.Now().Add(time.Second); ; {
			got := 0
			for q, s := range socks {
				n := s.Receive(descs)
				for _, d := range descs[:n] {
					data := u.Data(d)
					rspi := binary.BigEndian.Uint32(data[34:])
					if !bytes.Equal(data, sent[rspi]) {
						t.Errorf("queue %d: frame for SPI %#x differs from the one sent", q, rspi)
					}
					if off := int(d.Addr % uint64(u.FrameSize())); off != u.RxOffset() {
						t.Errorf("queue %d: packet at offset %d of its chunk, want %d", q, off, u.RxOffset())
					}
					delete(sent, rspi)
				}
				if s.Recycle(descs[:n]) != n {
					t.Errorf("queue %d: Recycle took fewer than %d", q, n)
				}
				perQueue[q] += n
				got += n
			}
			if got > 0 || time.Now().After(wait) {
				break
			}
		}
	}
	if len(sent) != 0 {
		t.Errorf("%d frames never arrived", len(sent))
	}
	t.Logf("received per queue: %v", perQueue)
	checkAccounting(t, u, 0)

	// TX: 32 frames from each queue, made in chunks from the UMEM.
	const perSock = 32
	want := map[string]bool{}
	for q, s := range socks {
		addrs := make([]uint64, perSock)
		if n := u.Alloc(addrs); n != perSock {
			t.Fatalf("Alloc got %d", n)
		}
		txd := make([]Desc, perSock)
		for i, a := range addrs {
			payload := []byte(fmt.Sprintf("espx afxdp test queue %d frame %d", q, i))
			f := ethFrame(macB, gwMAC, testEtherType, payload)
			txd[i] = u.Desc(a, 128, len(f))
			copy(u.Data(txd[i]), f)
			want[string(payload)] = true
		}
		checkAccounting(t, u, perSock)
		for off := 0; off < perSock; {
			off += s.Transmit(txd[off:])
		}
	}
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(5 * time.Second); len(want) > 0 && time.Now().Before(deadline); {
		for _, s := range socks {
			s.Kick()
		}
		f := ps.recv(buf)
		if len(f) > 14 && binary.BigEndian.Uint16(f[12:]) == testEtherType {
			delete(want, string(f[14:]))
		}
	}
	if len(want) != 0 {
		t.Errorf("%d transmitted frames not seen by the peer", len(want))
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		c := 0
		for _, s := range socks {
			s.Complete()
			st, _ := s.Stats()
			c += int(st.Completed)
		}
		if c == queues*perSock {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for q, s := range socks {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.TxPackets != perSock || st.Completed != perSock || st.TxInvalid+st.RxInvalid+st.FillInvalid+st.CompletionInvalid != 0 {
			t.Errorf("queue %d stats %+v", q, st)
		}
		if st.Kernel.TxInvalidDescs != 0 || st.Kernel.RxInvalidDescs != 0 {
			t.Errorf("queue %d kernel stats %+v", q, st.Kernel)
		}
	}
	checkAccounting(t, u, 0)
	for _, s := range socks {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if a := checkAccounting(t, u, 0); a.Free != a.Frames {
		t.Errorf("after Close, %d of %d chunks free", a.Free, a.Frames)
	}
}

// TestForwardSharedUMEM forwards frames from one device to another through
// one UMEM: each frame is transmitted from the chunk it was received in.
func TestForwardSharedUMEM(t *testing.T) {
	requireNetns(t)
	h1, gw, h2 := newNetns(t), newNetns(t), newNetns(t)
	const queues = 2
	veth(t, h1, "h1", gw, "a0", queues)
	veth(t, gw, "b0", h2, "h2", queues)
	a0, b0 := gw.ifindex(t, "a0"), gw.ifindex(t, "b0")
	a0MAC, b0MAC, h2MAC := gw.mac(t, "a0"), gw.mac(t, "b0"), h2.mac(t, "h2")

	u := newTestUMEM(t, UMEMConfig{NumFrames: 2048})
	pa, pb := newTestProgram(t, Protected), newTestProgram(t, Protected)
	attach(t, gw, pa, "a0")
	attach(t, gw, pb, "b0")
	cfg := SocketConfig{FillSize: 256, CompletionSize: 256, RxSize: 256, TxSize: 256}
	var sa, sb [queues]*Socket
	for q := range queues {
		sa[q] = openSocket(t, gw, u, a0, q, cfg)
		sb[q] = openSocket(t, gw, u, b0, q, cfg)
		sa[q].Refill()
		sb[q].Refill()
		if err := pa.SetSocket(sa[q]); err != nil {
			t.Fatal(err)
		}
		if err := pb.SetSocket(sb[q]); err != nil {
			t.Fatal(err)
		}
	}

	// The worker: a0 queue q to b0 queue q, MACs rewritten in place.
	var stop atomic.Bool
	var forwarded atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		descs := make([]Desc, 64)
		for !stop.Load() {
			for q := range queues {
				n := sa[q].Receive(descs)
				for _, d := range descs[:n] {
					f := u.Data(d)
					copy(f[0:6], h2MAC)
					copy(f[6:12], b0MAC)
				}
				sent := 0
				for sent < n {
					sent += sb[q].Transmit(descs[sent:n])
				}
				forwarded.Add(int64(n))
				sa[q].Refill()
				sb[q].Complete()
			}
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()

	src := openPacketSocket(t, h1, "h1")
	dst := openPacketSocket(t, h2, "h2")
	const total = 512
	want := map[string]bool{}
	for i := range total {
		payload := espPayload(uint32(0x2000+i), uint32(i), 48)
		want[string(payload)] = true
		f := ethFrame(a0MAC, macB, 0x0800, ipv4Packet(peer4, far4, 50, nil, payload))
		if err := src.send(f); err != nil {
			t.Fatal(err)
		}
		// Pace in bursts smaller than any ring so that nothing may drop.
		if i%32 == 31 {
			for deadline := time.Now().Add(2 * time.Second); forwarded.Load() < int64(i+1) && time.Now().Before(deadline); {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(5 * time.Second); len(want) > 0 && time.Now().Before(deadline); {
		f := dst.recv(buf)
		if len(f) < 34+8 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 50 {
			continue
		}
		if !bytes.Equal(f[0:6], h2MAC) || !bytes.Equal(f[6:12], b0MAC) {
			t.Errorf("forwarded frame with MACs %v %v", net.HardwareAddr(f[0:6]), net.HardwareAddr(f[6:12]))
		}
		delete(want, string(f[34:]))
	}
	if len(want) != 0 {
		t.Errorf("%d of %d frames not forwarded", len(want), total)
	}
	stop.Store(true)
	wg.Wait()

	var rx, tx uint64
	for q := range queues {
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			sb[q].Complete()
			if st, _ := sb[q].Stats(); st.Completed == st.TxPackets {
				break
			}
		}
		sta, _ := sa[q].Stats()
		stb, _ := sb[q].Stats()
		rx += sta.RxPackets
		tx += stb.TxPackets
		if stb.Completed != stb.TxPackets {
			t.Errorf("queue %d: %d sent, %d completed", q, stb.TxPackets, stb.Completed)
		}
	}
	if rx != total || tx != total {
		t.Errorf("received %d, transmitted %d, want %d", rx, tx, total)
	}
	checkAccounting(t, u, 0)
	for q := range queues {
		sa[q].Close()
		sb[q].Close()
	}
	if a := checkAccounting(t, u, 0); a.Free != a.Frames {
		t.Errorf("after Close, %d of %d chunks free", a.Free, a.Frames)
	}
}
