package dataplane

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// accept runs the receiver's sequence: check, then (the ICV having
// verified) update.
func accept(w *ReplayWindow, lo uint32) (uint64, Drop) {
	seq, d := w.Check(lo)
	if d != DropNone {
		return seq, d
	}
	return seq, w.Update(seq)
}

func TestReplayWindowBasics(t *testing.T) {
	for _, size := range []int{32, 64, 100, 4096, 65536} {
		w := NewReplayWindow(size, false)
		steps := []struct {
			seq  uint32
			want Drop
		}{
			{0, DropTooOld},
			{1, DropNone},
			{1, DropReplay},
			{3, DropNone},
			{2, DropNone},
			{2, DropReplay},
			{uint32(size) + 10, DropNone},
			{11, DropNone},   // the oldest inside the window
			{10, DropTooOld}, // just left of it
			{3, DropTooOld},
			{uint32(size) + 9, DropNone},
			{uint32(size) + 10, DropReplay},
			{uint32(size) + 11, DropNone},
		}
		for i, s := range steps {
			if _, d := accept(w, s.seq); d != s.want {
				t.Fatalf("window %d step %d seq %d: %v, want %v", size, i, s.seq, d, s.want)
			}
		}
	}
}

// TestReplayWindowCheckIsReadOnly: a packet that fails its ICV after
// Check must not use up its sequence number.
func TestReplayWindowCheckIsReadOnly(t *testing.T) {
	w := NewReplayWindow(4096, false)
	for range 3 {
		if _, d := w.Check(5); d != DropNone {
			t.Fatalf("Check(5) = %v", d)
		}
	}
	if w.Top() != 0 {
		t.Fatalf("Check moved the window to %d", w.Top())
	}
	if _, d := accept(w, 5); d != DropNone {
		t.Fatalf("5 after checks: %v", d)
	}
}

// TestReplayWindowMatchesModel compares the window with a plain map-based
// model over random traffic: reordering, duplicates, jumps far ahead.
func TestReplayWindowMatchesModel(t *testing.T) {
	for _, size := range []int{32, 4096, 65536} {
		w := NewReplayWindow(size, false)
		seen := map[uint64]bool{}
		var top uint64
		r := rand.New(rand.NewPCG(1, uint64(size)))
		next := uint64(1)
		for i := 0; i < 200000; i++ {
			var s uint64
			switch x := r.IntN(100); {
			case x < 60:
				s = next
				next++
			case x < 90:
				s = next - uint64(r.IntN(min(size*2, int(next))))
			case x < 99:
				s = next - uint64(r.IntN(int(min(next, 64))))
			default:
				next += uint64(r.IntN(size * 3))
				s = next
			}
			if s == 0 || s > 1<<32-1 {
				continue
			}
			want := DropNone
			switch {
			case top >= s && top-s >= uint64(size):
				want = DropTooOld
			case seen[s]:
				want = DropReplay
			}
			_, got := accept(w, uint32(s))
			if got != want {
				t.Fatalf("window %d packet %d seq %d top %d: %v, want %v", size, i, s, top, got, want)
			}
			if got == DropNone {
				seen[s] = true
				top = max(top, s)
			}
		}
	}
}

func TestReplayWindowDisabled(t *testing.T) {
	w := NewReplayWindow(0, false)
	for range 3 {
		if _, d := accept(w, 7); d != DropNone {
			t.Fatalf("window 0 dropped a repeat: %v", d)
		}
	}
	if _, d := accept(w, 1); d != DropNone {
		t.Fatalf("window 0 dropped an old packet: %v", d)
	}
	if w.Top() != 7 {
		t.Fatalf("top %d, want 7", w.Top())
	}
}

// TestReplayESNInference walks RFC 4303 Appendix A2's cases around 2^32.
func TestReplayESNInference(t *testing.T) {
	const W = 4096
	w := NewReplayWindow(W, true)
	// The sender starts at 1 and moves on by less than 2^32-W at a time,
	// which is what inference assumes.
	seqs := []uint64{1, 2, 1 << 31, 1<<32 - 100, 1<<32 - 1, 1 << 32, 1<<32 + 1, 1<<32 - 50, 1<<32 + 3000, 1<<32 - 1000, 1<<32 + 1<<31, 2<<32 - 7, 2<<32 + 5}
	for _, s := range seqs {
		got, d := accept(w, uint32(s))
		if d != DropNone || got != s {
			t.Fatalf("seq %#x: inferred %#x, %v", s, got, d)
		}
	}
	// Top is 2^33+5: the window straddles 2^33, so low bits just below
	// 2^32 belong to the previous epoch and are inside the window ...
	if got, _ := w.Check(low(2<<32 - 10)); got != 2<<32-10 {
		t.Fatalf("straddling window: inferred %#x", got)
	}
	// ... and low bits past the window's bottom belong to the next epoch.
	if got, _ := w.Check(low(2<<32 - W - 10)); got != 3<<32-W-10 {
		t.Fatalf("wrapped low bits: inferred %#x, want %#x", got, uint64(3<<32-W-10))
	}
	// In the first epoch, low bits above the window's wrapped bottom
	// cannot be from an earlier epoch: they are taken as epoch 0.
	w2 := NewReplayWindow(W, true)
	accept(w2, 10)
	if got, d := w2.Check(low(1<<32 - 10)); d != DropNone || got != 1<<32-10 {
		t.Fatalf("first epoch: %#x %v", got, d)
	}
	// Without a replay window, inference uses 2^31.
	w3 := NewReplayWindow(0, true)
	accept(w3, 1<<31+5)
	if got, _ := w3.Check(3); got != 1<<32+3 {
		t.Fatalf("window 0: inferred %#x, want %#x", got, uint64(1<<32+3))
	}
	if got, _ := w3.Check(1 << 30); got != 1<<30 {
		t.Fatalf("window 0: inferred %#x, want %#x", got, uint64(1<<30))
	}
}

// TestReplayWindowConcurrent: several workers receive the same stream,
// each packet up to three times, out of order. Every sequence number must be
// accepted exactly once (no valid packet lost, no replay accepted).
func TestReplayWindowConcurrent(t *testing.T) {
	for _, size := range []int{4096, 65536} {
		const workers, dups, chunk = 4, 3, 64
		n := uint64(4 * size)
		w := NewReplayWindow(size, true)
		// Cross the ESN boundary; start more than a window below it so
		// that inference from an empty window sees the first epoch.
		first := uint64(1<<32) - 2*uint64(size)
		accepted := make([]atomic.Int32, n)
		nchunks := int(n / chunk)
		done := make([]atomic.Bool, nchunks)
		// low is the first chunk not yet done. A worker does not start
		// a chunk more than half a window ahead of it: a real receiver
		// drops packets delayed by more than the window, and this test
		// is about packets inside it.
		var low, next atomic.Int64
		ahead := int64(size / 2 / chunk)
		var wg sync.WaitGroup
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(g), 7))
				buf := make([]uint64, 0, chunk*dups)
				for {
					c := next.Add(1) - 1
					if c >= int64(nchunks) {
						return
					}
					for low.Load() < c-ahead {
						runtime.Gosched()
					}
					buf = buf[:0]
					for i := uint64(c) * chunk; i < uint64(c+1)*chunk; i++ {
						for range dups {
							buf = append(buf, first+i)
						}
					}
					r.Shuffle(len(buf), func(i, j int) { buf[i], buf[j] = buf[j], buf[i] })
					for _, s := range buf {
						got, d := accept(w, uint32(s))
						switch d {
						case DropNone:
							if got != s {
								t.Errorf("seq %#x inferred as %#x", s, got)
							}
							accepted[s-first].Add(1)
						case DropReplay:
						default:
							t.Errorf("seq %#x: %v", s, d)
						}
					}
					done[c].Store(true)
					for l := low.Load(); l < int64(nchunks) && done[l].Load(); l = low.Load() {
						low.CompareAndSwap(l, l+1)
					}
				}
			}()
		}
		wg.Wait()
		for i := range accepted {
			if c := accepted[i].Load(); c != 1 {
				t.Fatalf("window %d: seq %#x accepted %d times", size, first+uint64(i), c)
			}
		}
	}
}

func FuzzReplay(f *testing.F) {
	f.Add(uint16(64), []byte{1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0})
	f.Add(uint16(4096), []byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, size uint16, stream []byte) {
		for _, esn := range []bool{false, true} {
			w := NewReplayWindow(int(size), esn)
			seen := map[uint64]bool{}
			var top uint64
			// Each pass reads the whole stream: with and without ESN.
			for s := stream; len(s) >= 4; s = s[4:] {
				lo := uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
				seq, d := w.Check(lo)
				if d != DropNone {
					continue
				}
				if uint32(seq) != lo || seq == 0 {
					t.Fatalf("checked %#x for low bits %#x", seq, lo)
				}
				// A packet that passes Check is authenticated, then
				// Updated: the top is the highest of those, even if
				// Update then drops it (a slot untouched across 2^36
				// sequence numbers, which ESN inference reaches in a
				// few dozen fuzzed packets, is taken for a newer one).
				top = max(top, seq)
				if d = w.Update(seq); d != DropNone {
					continue
				}
				if size > 0 && seen[seq] {
					t.Fatalf("replay of %#x accepted", seq)
				}
				if size > 0 && top-seq >= uint64(size) {
					t.Fatalf("%#x accepted outside window (top %#x)", seq, top)
				}
				seen[seq] = true
				if w.Top() != top {
					t.Fatalf("top %#x, want %#x", w.Top(), top)
				}
			}
		}
	})
}

func BenchmarkReplayCheckUpdate(b *testing.B) {
	for _, size := range []int{4096, 65536} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			w := NewReplayWindow(size, true)
			b.ReportAllocs()
			seq := uint64(0)
			for b.Loop() {
				seq++
				s, d := w.Check(uint32(seq))
				if d == DropNone {
					w.Update(s)
				}
			}
		})
	}
}

// low is the 32 bits of a sequence number that travel in the packet.
func low(seq uint64) uint32 { return uint32(seq) }
