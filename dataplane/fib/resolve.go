package fib

import (
	"net/netip"
	"time"
)

const (
	// ResolveInterval is the least time between two resolution requests
	// that Resolve sends for one address: the kernel retransmits its own
	// solicitations (every retrans_time, 1 s by default), so asking more
	// often only costs netlink messages.
	ResolveInterval = 100 * time.Millisecond

	// resolveSlots is the size of Resolve's rate-limit table. Addresses
	// that hash to one slot share its limit, which at worst delays a
	// request by ResolveInterval; a gateway has far fewer unresolved
	// next hops at a time than slots.
	resolveSlots = 1024
	// resolveQueue bounds the requests waiting for the netlink goroutine.
	resolveQueue = 256
)

type resolveReq struct {
	ifindex int
	addr    netip.Addr
}

// Resolve asks the kernel to resolve addr on the interface ifindex, as it
// does before sending a packet there: an ARP request or an ND neighbour
// solicitation, and a neighbour entry that [Mirror] then brings into the
// table. It is for the next hop of an Unresolved lookup, and for a STALE
// entry that needs confirming.
//
// Workers may call it for every packet: it never blocks and, once
// running, never allocates. It sends at most one request per address
// every ResolveInterval, and drops requests when the goroutine that
// passes them to the kernel (run by Mirror) falls behind or is not
// running: resolution is retried by the next packet anyway.
func (t *Table) Resolve(ifindex int, addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	k := keyOf(addr)
	i := fmix64(k.hi^fmix64(k.lo^uint64(ifindex))) & (resolveSlots - 1)
	slot := &t.resolveNext[i]
	now := int64(time.Since(t.epoch))
	next := slot.Load()
	if now < next || !slot.CompareAndSwap(next, now+int64(ResolveInterval)) {
		// Too soon, or another worker is sending this very request.
		return
	}
	select {
	case t.resolve <- resolveReq{ifindex: ifindex, addr: addr.Unmap()}:
	default:
	}
}
