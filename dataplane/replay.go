package dataplane

import (
	"math/bits"
	"sync/atomic"
)

// DefaultReplayWindow is the window an SA gets unless configured otherwise.
// The kernel's default of 32 or strongSwan's 128 is far too small for a
// receiver that spreads one SA over several cores.
const DefaultReplayWindow = 4096

// MaxReplayWindow bounds the window so that a configuration error cannot
// make one SA take gigabytes: 2^24 packets is 512 KiB of bitmap.
const MaxReplayWindow = 1 << 24

// blockBits is the number of sequence numbers one slot of the bitmap covers.
const blockBits = 32

// ReplayWindow is the anti-replay state of an inbound SA (RFC 4303 section
// 3.4.3 and Appendix A2), shared by every worker that decrypts for the SA.
//
// Check runs before decryption and only reads; Update runs after the ICV has
// verified and is the only writer. Neither takes a lock and neither costs
// more with a larger window: the bitmap is a ring of slots in the manner of
// RFC 6479, and instead of clearing slots as the window advances, which needs
// the whole update to be atomic, each slot carries a tag naming the block of
// 32 sequence numbers its bits belong to. A slot whose tag is older than the
// block being marked is stale and is simply overwritten.
//
// There are at least W+32 sequence numbers' worth of slots, so the block of
// the oldest number inside the window never shares a slot with the block of
// the newest. Tags are the low 32 bits of the block number and are compared
// in serial number arithmetic; a slot would be misjudged only if it went
// untouched across 2^36 sequence numbers, and then a valid packet is dropped
// as too old, never a replay accepted.
type ReplayWindow struct {
	// top is the highest sequence number that has passed Update, in full
	// 64 bits. It only grows, by compare-and-swap.
	top atomic.Uint64
	// slots hold tag<<32 | bitmap. A bit is set by compare-and-swap on the
	// whole slot, so two workers that race on the same sequence number
	// see each other: exactly one of them sets the bit.
	slots []atomic.Uint64
	mask  uint64 // len(slots)-1
	size  uint64 // W; 0 disables replay checking
	// infer is the window used to infer the high-order ESN bits: W, or
	// 2^31 when replay checking is off (RFC 4303 Appendix A2.3).
	infer uint64
	esn   bool
}

// NewReplayWindow makes a window of size packets (0 disables the replay
// check; the highest sequence number is still tracked for ESN). With esn the
// window works on 64-bit extended sequence numbers.
func NewReplayWindow(size int, esn bool) *ReplayWindow {
	if size < 0 {
		size = 0
	}
	if size > MaxReplayWindow {
		size = MaxReplayWindow
	}
	w := &ReplayWindow{size: uint64(size), infer: uint64(size), esn: esn}
	if size == 0 {
		w.infer = 1 << 31
		return w
	}
	n := (uint64(size) + 2*blockBits - 1) / blockBits
	n = 1 << bits.Len64(n-1)
	w.slots = make([]atomic.Uint64, n)
	w.mask = n - 1
	return w
}

// Size is the window in packets.
func (w *ReplayWindow) Size() int { return int(w.size) }

// Top is the highest sequence number received and authenticated so far.
func (w *ReplayWindow) Top() uint64 { return w.top.Load() }

// Check infers the full sequence number of a packet from the 32 bits it
// carries and says whether it may be new. It is called before decryption
// and changes nothing.
func (w *ReplayWindow) Check(lo uint32) (uint64, Drop) {
	top := w.top.Load()
	seq := uint64(lo)
	if w.esn {
		seq = w.inferESN(top, lo)
	}
	if seq == 0 {
		// RFC 4303 section 3.3.3: the first packet is 1; 0 never comes
		// from a correct sender, and with ESN it would be 2^32*k.
		return 0, DropTooOld
	}
	if w.size == 0 || seq > top {
		return seq, DropNone
	}
	if top-seq >= w.size {
		return seq, DropTooOld
	}
	s := w.slots[(seq/blockBits)&w.mask].Load()
	if uint32(s>>32) == uint32(seq/blockBits) && s&(1<<(seq%blockBits)) != 0 {
		return seq, DropReplay
	}
	return seq, DropNone
}

// inferESN is RFC 4303 Appendix A2.2: the high-order bits are those of the
// top of the window, or one more if the low bits fell below the window's
// bottom (the counter wrapped), or one less if the window straddles a wrap
// and the packet is from before it.
func (w *ReplayWindow) inferESN(top uint64, lo uint32) uint64 {
	tl, th := uint32(top), top>>32
	bottom := tl - uint32(w.infer) + 1 // wraps when the window straddles 2^32*k
	if uint64(tl) >= w.infer-1 {
		if lo >= bottom {
			return th<<32 | uint64(lo)
		}
		return (th+1)<<32 | uint64(lo)
	}
	if lo >= bottom && th > 0 {
		return (th-1)<<32 | uint64(lo)
	}
	// In the first epoch there is no earlier one to belong to: the
	// RFC's Th-1 would wrap to 2^32-1 and the packet fail its ICV. Epoch
	// 0 is the only candidate; the ICV decides as always.
	return th<<32 | uint64(lo)
}

// Update marks seq as received after its ICV verified. It repeats the check
// because another worker may have received the same packet, or moved the
// window past it, while this one was decrypting.
func (w *ReplayWindow) Update(seq uint64) Drop {
	// Raise the top first: once it is raised, any worker checking an
	// older number sees the window where it will be after this packet.
	top := w.top.Load()
	for seq > top {
		if w.top.CompareAndSwap(top, seq) {
			top = seq
			break
		}
		top = w.top.Load()
	}
	if w.size == 0 {
		return DropNone
	}
	if top-seq >= w.size {
		return DropTooOld
	}
	slot := &w.slots[(seq/blockBits)&w.mask]
	tag := uint32(seq / blockBits)
	bit := uint64(1) << (seq % blockBits)
	for {
		old := slot.Load()
		var next uint64
		switch oldTag := uint32(old >> 32); {
		case oldTag == tag:
			if old&bit != 0 {
				return DropReplay
			}
			next = old | bit
		case int32(tag-oldTag) > 0:
			// A stale block from an earlier turn of the ring.
			next = uint64(tag)<<32 | bit
		default:
			// The window moved on by a whole ring while we decrypted:
			// this slot now belongs to a newer block.
			return DropTooOld
		}
		if slot.CompareAndSwap(old, next) {
			return DropNone
		}
	}
}

// reset empties the window; benchmarks use it to replay a fixed set of
// packets.
func (w *ReplayWindow) reset() {
	w.top.Store(0)
	clear(w.slots)
}
