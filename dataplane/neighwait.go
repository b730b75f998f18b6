package dataplane

import (
	"net/netip"
	"time"

	"github.com/espx/espx/afxdp"
)

// Packets whose next hop's link-layer address is not known yet wait for
// it, as the kernel's neighbour queue holds them (unres_qlen): a few per
// next hop, for a bounded time, each worker its own. Once the kernel has
// resolved the address (the worker asked it to), they run their path
// again; those still waiting after neighHoldTime are dropped and counted
// as DropNoNeighbour. Without this, the first packet towards a host the
// gateway has not talked to lately would be lost.
const (
	neighHoldPerHop = 3
	neighHoldMax    = 64
	neighHoldTime   = int64(time.Second)
)

// dropHeld marks a frame whose packet was copied aside to wait (for an
// SA or a neighbour): its frame is freed like a dropped one's, but it is
// not counted as a drop.
const dropHeld = numDrops

type neighHeld struct {
	buf []byte
	// outbound packets are whole frames that run the outbound path again
	// (they wait before encapsulation); the others are IP packets that
	// only need forwarding.
	outbound bool
	dst      netip.Addr // what was looked up: the next hop follows from it
	hop      netip.Addr
	ifindex  int
	since    int64
}

// holdForNeighbour sets frame i aside until the next hop in w.nh (found
// for dst) is resolved, or drops it if too many wait already.
func (w *Worker) holdForNeighbour(i int, dst netip.Addr, outbound bool) {
	nh := &w.nh
	if !outbound {
		nh = &w.nhs[i]
	}
	w.rt.Resolve(nh.Ifindex, nh.Addr)
	same := 0
	for _, h := range w.nheld {
		if h.hop == nh.Addr && h.ifindex == nh.Ifindex {
			same++
		}
	}
	f := &w.frames[i]
	p := f.Data()
	if outbound {
		p = f.Buf[f.Off-ethLen : f.Off+f.Len]
	}
	if same >= neighHoldPerHop || len(w.nheld) >= neighHoldMax || len(p) > heldBufSize {
		w.dropFrame(i, DropNoNeighbour)
		return
	}
	var buf []byte
	if n := len(w.nfree); n > 0 {
		buf, w.nfree = w.nfree[n-1][:heldBufSize], w.nfree[:n-1]
	} else {
		buf = make([]byte, heldBufSize) // at most neighHoldMax per worker, ever
	}
	buf = buf[:copy(buf, p)]
	w.nheld = append(w.nheld, neighHeld{buf: buf, outbound: outbound, dst: dst, hop: nh.Addr, ifindex: nh.Ifindex, since: w.eng.Now})
	w.drops[i] = dropHeld
	w.eng.n.neighHeld++
}

// retryNeighbours sends the waiting packets whose next hop is now known
// and drops those that waited too long. It returns how many it took up.
func (w *Worker) retryNeighbours() int {
	var ready [2][]afxdp.Desc
	keep := w.nheld[:0]
	done := 0
	for _, h := range w.nheld {
		switch w.rt.Route(h.dst, &w.nh) {
		case RouteOK:
		case RouteUnresolved:
			if w.eng.Now-h.since < neighHoldTime {
				keep = append(keep, h)
				continue
			}
			fallthrough
		default:
			w.eng.drop(DropNoNeighbour)
			w.eng.n.neighResumed++
			w.nfree = append(w.nfree, h.buf)
			done++
			continue
		}
		var a [1]uint64
		if w.mem.Alloc(a[:]) == 0 {
			keep = append(keep, h) // no frame free now: next round
			continue
		}
		d := w.mem.Desc(a[0], w.mem.RxOffset(), len(h.buf))
		buf, off := w.mem.Chunk(d)
		copy(buf[off:], h.buf)
		k := 0
		if !h.outbound {
			k = 1
		}
		ready[k] = append(ready[k], d)
		w.eng.n.neighResumed++
		w.nfree = append(w.nfree, h.buf)
		done++
	}
	w.nheld = keep
	if len(ready[0]) > 0 {
		descs := w.rx[:copy(w.rx[:], ready[0])]
		w.load(descs)
		w.outbound(descs)
		w.flush(Protected, descs)
	}
	if len(ready[1]) > 0 {
		descs := w.rx[:copy(w.rx[:], ready[1])]
		w.load(descs)
		for i := range descs {
			w.drops[i] = DropNone
			w.forward(i)
		}
		w.flush(Protected, descs)
	}
	w.eng.n.publish(w.C)
	return done
}

// load points the batch's frames at descs.
func (w *Worker) load(descs []afxdp.Desc) {
	for i, d := range descs {
		buf, off := w.mem.Chunk(d)
		w.frames[i] = Frame{Buf: buf, Off: off, Len: int(d.Len)}
	}
}
