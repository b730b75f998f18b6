package dataplane

import (
	"sync"
	"testing"
)

// TestConcurrentWorkersOneSA: several workers protect packets with one
// outbound SA while several others open them with the matching inbound SA,
// each packet delivered twice to different workers. Every sequence number is
// used exactly once on the way out, every packet is accepted exactly once on
// the way in, and the counters add up.
func TestConcurrentWorkersOneSA(t *testing.T) {
	const workers, perWorker, batch = 4, 512, 16
	out, in := saPair(t, SAConfig{SPI: 0x1000, Transform: transforms[0].c, Src: gw4a, Dst: gw4b, ESN: true, ReplayWindow: 4 * workers * perWorker, FirstSeq: 1<<32 - 1000})

	// Receivers infer the high sequence bits from what they have seen, so
	// like a real receiver this one starts from the sender's first packet,
	// here a little before 2^32, not from the middle of the stream.
	prime := frameOf(udpPacket(host4a, host4b, 32, 0))
	if d := NewEngine(nil).Encap(out, &prime); d != DropNone {
		t.Fatal(d)
	}
	if d := NewEngine(nil).Decap(in, &prime); d != DropNone {
		t.Fatal(d)
	}

	sent := make([][][]byte, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := NewEngine(nil)
			frames := make([]Frame, batch)
			sas := make([]*OutboundSA, batch)
			drops := make([]Drop, batch)
			for range perWorker / batch {
				for i := range frames {
					frames[i] = frameOf(udpPacket(host4a, host4b, 32, 0))
					sas[i] = out
				}
				if n := e.EncapBatch(sas, frames, drops); n != batch {
					t.Errorf("worker %d sent %d of %d: %v", g, n, batch, drops)
					return
				}
				for i := range frames {
					sent[g] = append(sent[g], append([]byte(nil), frames[i].Data()...))
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[uint32]bool{}
	var all [][]byte
	for _, ps := range sent {
		for _, p := range ps {
			s := espHdr(p[ipv4MinLen:]).seq()
			if seen[s] {
				t.Fatalf("sequence number %#x used twice", s)
			}
			seen[s] = true
			all = append(all, p)
		}
	}
	if want := uint64(1<<32 - 1000 + 1 + workers*perWorker); out.Seq() != want {
		t.Fatalf("counter at %#x, want %#x", out.Seq(), want)
	}

	// Receive: worker g takes every packet whose index is congruent to g
	// or g+1 modulo workers, so each packet reaches two workers.
	accepted := make([]int, workers)
	counters := make([]*Counters, workers)
	for g := range workers {
		counters[g] = new(Counters)
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := NewEngine(counters[g])
			for i, p := range all {
				if i%workers != g && (i+1)%workers != g {
					continue
				}
				f := frameOf(p)
				switch d := e.Decap(in, &f); d {
				case DropNone:
					accepted[g]++
				case DropReplay:
				default:
					t.Errorf("packet %d: %v", i, d)
				}
			}
		}()
	}
	wg.Wait()
	total, replays := 0, uint64(0)
	for g := range workers {
		total += accepted[g]
		replays += counters[g].Dropped(DropReplay)
	}
	if total != len(all) || replays != uint64(len(all)) {
		t.Fatalf("accepted %d and dropped %d replays of %d packets sent twice", total, replays, len(all))
	}
	if in.Stats.Packets.Load() != uint64(len(all))+1 {
		t.Fatalf("SA counted %d packets", in.Stats.Packets.Load())
	}
}
