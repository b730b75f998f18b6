package dataplane

import (
	"net/netip"
	"strconv"
	"testing"
)

// BenchmarkPipeline is a worker's whole per-core path on in-memory ports
// (no kernel): frames from a generator port are copied into UMEM frames
// as a NIC would DMA them, received in batches of Batch, stripped of
// Ethernet, looked up in the SPD and the SAD, encrypted or decrypted,
// policy-checked, routed, given an Ethernet header and transmitted, and
// their frames recycled. One IPv4 site-to-site tunnel, AES-GCM-128; size
// is the inner IP packet. Its Raw twins (BenchmarkRawSeal/RawOpen) in the
// same run are the cipher alone.
func BenchmarkPipeline(b *testing.B) {
	for _, n := range []int{64, 1400} {
		b.Run("encrypt/"+strconv.Itoa(n), func(b *testing.B) {
			p := newTestPair(b, Config{}, false, false)
			inner := innerSized(n)
			p.a.prot.Gen = ether(macGwAProt, macHostA, inner)
			p.a.unprot.Discard = true
			runPipeline(b, p.a, n)
			if s := p.a.w.C.Snapshot(); s.TxPackets[Unprotected] != s.RxPackets[Protected] {
				b.Fatalf("sent %d of %d", s.TxPackets[Unprotected], s.RxPackets[Protected])
			}
		})
		b.Run("decrypt/"+strconv.Itoa(n), func(b *testing.B) {
			p := newTestPair(b, Config{}, false, false)
			// 65536 ESP packets with consecutive sequence numbers from gwA;
			// each time the generator starts over, gwB's replay window is
			// reset, so that every packet is new to it.
			const distinct = 1 << 16
			inner := innerSized(n)
			p.a.prot.Gen = ether(macGwAProt, macHostA, inner)
			p.a.unprot.Discard = false
			for len(p.a.unprot.Sent) < distinct {
				p.a.w.Poll()
			}
			p.b.unprot.GenList = p.a.unprot.Take()[:distinct]
			sa := p.b.dp.sad.in.get(0x1001)
			p.b.unprot.OnWrap = sa.window.reset
			p.b.prot.Discard = true
			runPipeline(b, p.b, n)
			if s := p.b.w.C.Snapshot(); s.TxPackets[Protected] != s.RxPackets[Unprotected] {
				b.Fatalf("delivered %d of %d: drops %v", s.TxPackets[Protected], s.RxPackets[Unprotected], s.Drops)
			}
		})
	}
}

// innerSized is an IPv4 UDP packet of n bytes from hostA's to hostB's
// network.
func innerSized(n int) []byte {
	return udpPacket(netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("203.0.113.20"), n-ipv4MinLen-udpLen, 0)
}

func runPipeline(b *testing.B, g *testGW, n int) {
	g.w.Poll()
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	done := 0
	for done < b.N {
		done += g.w.Poll()
	}
	b.StopTimer()
	b.ReportMetric(float64(done)/b.Elapsed().Seconds()/1e6, "Mpps")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(done), "ns/pkt")
}
