package dataplane

import (
	"encoding/binary"

	"github.com/espx/espx/afxdp"
)

// An IPv4 packet without DF that will not fit the tunnel is fragmented
// before encapsulation, as a router fragments before forwarding (RFC 791,
// RFC 4301 section 8.1's pre-fragmentation): the first fragment stays in
// the packet's frame and goes on in the batch, the others get frames of
// their own and are encapsulated with the same SA right after it. They
// skip the SPD on purpose: later fragments carry no ports, and policy was
// decided on the whole packet.

// fragPending is a fragment waiting for encapsulation with sa.
type fragPending struct {
	d  afxdp.Desc
	sa *OutboundSA
	nh NextHop
}

// maxFragsPerPacket bounds the work one packet can make: a 9000-byte
// jumbo into a 576-byte path is 17 fragments.
const maxFragsPerPacket = 32

// fragmentInner cuts the IPv4 packet in frame i so that every piece is at
// most maxLen bytes: frame i keeps the first piece and the rest go to
// w.frags for sa. It reports false (and changes nothing) when the packet
// cannot be fragmented here: options in the header, pieces that would be
// too many, or no free frames.
func (w *Worker) fragmentInner(i int, sa *OutboundSA, maxLen int) bool {
	f := &w.frames[i]
	p := f.Data()
	h := ipv4(p)
	hl, n := h.headerLen(), h.totalLen()
	if hl != ipv4MinLen {
		// Options would have to be sorted into copied and not copied ones;
		// packets with options are rare enough to get the ICMP instead.
		return false
	}
	step := (maxLen - hl) &^ 7
	if step < 8 {
		return false
	}
	payload := n - hl
	pieces := (payload + step - 1) / step
	if pieces > maxFragsPerPacket {
		return false
	}
	addrs := w.fragAddrs[:]
	if got := w.mem.Alloc(addrs[:pieces-1]); got < pieces-1 {
		w.mem.FreeAddrs(addrs[:got])
		return false
	}
	ff := h.flagsFrag()
	base := int(ff&ipv4FragMask) * 8
	lastMF := ff & ipv4FlagMF
	for k := 1; k < pieces; k++ {
		off := k * step
		size := min(step, payload-off)
		d := w.mem.Desc(addrs[k-1], w.mem.RxOffset(), hl+size)
		buf, o := w.mem.Chunk(d)
		q := buf[o : o+hl+size]
		copy(q, p[:hl])
		copy(q[hl:], p[hl+off:hl+off+size])
		mf := uint16(ipv4FlagMF)
		if k == pieces-1 {
			mf = lastMF
		}
		qh := ipv4(q)
		qh.setTotalLen(hl + size)
		binary.BigEndian.PutUint16(q[ipv4FlagsOff:], mf|uint16((base+off)/8))
		qh.setChecksum()
		w.frags = append(w.frags, fragPending{d: d, sa: sa, nh: w.nh})
	}
	h.setTotalLen(hl + step)
	binary.BigEndian.PutUint16(p[ipv4FlagsOff:], ipv4FlagMF|uint16(base/8))
	h.setChecksum()
	f.Len = hl + step
	w.eng.n.fragments += uint64(pieces - 1)
	return true
}

// sendFragments encapsulates and sends the fragments fragmentInner made.
func (w *Worker) sendFragments() {
	for len(w.frags) > 0 {
		chunk := w.frags[:min(len(w.frags), Batch)]
		descs := w.rx[:len(chunk)]
		for j, fp := range chunk {
			descs[j] = fp.d
			w.cOut[j] = fp.sa
			w.nhs[j] = fp.nh
		}
		w.load(descs)
		copy(w.cFrames[:len(chunk)], w.frames[:len(chunk)])
		w.eng.EncapBatch(w.cOut[:len(chunk)], w.cFrames[:len(chunk)], w.drops[:len(chunk)])
		for j := range chunk {
			if w.drops[j] != DropNone {
				continue // counted by the engine
			}
			w.frames[j] = w.cFrames[j]
			if d := pushEthernet(&w.frames[j], &w.nhs[j]); d != DropNone {
				w.dropFrame(j, d)
			}
		}
		w.flush(Protected, descs)
		w.frags = w.frags[len(chunk):]
	}
	w.frags = w.frags[:0]
}
