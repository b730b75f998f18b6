// Package dataplane is the ESP data plane of espx: runtime SAs, ESP
// encapsulation and decapsulation, the anti-replay window, the workers
// that move packets between AF_XDP sockets, and the per-worker counters.
//
// # Gateway
//
// A [Dataplane] holds what the workers share: the SAD (inbound SAs by SPI,
// outbound SAs by request ID, in lock-free tables), the SPD (package spd)
// and the pending acquires. The control plane drives it through
// [Installer], shaped like XFRM, and hears back through [Dataplane.Events]
// (acquires, soft and hard expiry, idle SAs). [Dataplane.Start] brings a [Gateway] up
// on two interfaces: XDP programs, one UMEM and two sockets per queue, a
// [Worker] per queue, and a mirror of the kernel's routes and neighbours
// (package fib). A worker receives a batch on each side: outbound packets
// go through the SPD (protect, bypass, discard, or a trap that raises an
// acquire and holds a few packets), are fragmented if too big without DF
// or answered with an ICMP error, encrypted, routed and sent; inbound ESP
// is decrypted and must match a forward policy of its SA; cleartext meets
// the forward policies too. Packets wait for unresolved next hops as the
// kernel's neighbour queue holds them. Nothing on these paths allocates.
//
// # Pipeline
//
// Each worker owns one [Engine] and runs batches of frames through it; SAs
// are shared between workers.
//
//	outbound: frames ─ SPD/SA lookup ─▶ Engine.EncapBatch ─▶ route, TX
//	                                     │ per run of one SA: reserve seq
//	                                     │ numbers (one CAS), then for each
//	                                     │ frame: outer headers from the SA's
//	                                     │ template, trailer, crypto Seal
//	inbound:  frames ─ ParseInbound ─ SA by SPI ─▶ Engine.DecapBatch ─▶ route, TX
//	                                     │ replay Check (read only), crypto
//	                                     │ Open, replay Update, padding and
//	                                     │ inner packet checks, strip headers
//
// Frames are views into packet buffers with headroom and tailroom
// ([Frame]); encapsulation grows a frame in place into both, decapsulation
// shrinks it in place. Nothing on these paths allocates.
//
// # Sharing
//
// [OutboundSA] and [InboundSA] are built once from an [SAConfig] by the
// control plane and then read by any number of workers. What changes per
// packet is atomic: the outbound sequence counter, from which workers reserve
// runs of numbers by compare-and-swap so that each number is used once and
// the counter never passes its limit; the [ReplayWindow], which is lock-free
// and correct when several workers decrypt packets of one SA at once; and
// the SA's [SAStats], added to once per run of packets.
//
// # Drops and counters
//
// A packet that is not passed on is not an error: it is a [Drop] reason,
// recorded per frame and counted in the worker's [Counters]. The engine
// counts in plain memory and publishes to the atomic counters once a batch,
// so that a collector can read them at any time without slowing the worker.
package dataplane
