// Package dataplane is the ESP data plane of espx: runtime SAs, ESP
// encapsulation and decapsulation, the anti-replay window and the per-worker
// counters. The workers that drive it from AF_XDP queues build on these
// pieces.
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
