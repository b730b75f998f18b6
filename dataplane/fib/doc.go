// Package fib is the data plane's forwarding information base: a mirror
// of the kernel's routes, neighbours, links and interface addresses, in
// which workers find, for every packet they transmit, the egress
// interface, the next hop, and the source and destination MACs.
//
// The kernel keeps owning all of it. Addresses and routes are configured
// with ip(8) or a routing daemon as usual, and the kernel runs ARP and ND;
// the data plane only reads the result. This is what lets espx forward
// through AF_XDP, bypassing the kernel's stack, without a routing stack of
// its own.
//
// # Pipeline
//
//	kernel ── rtnetlink notifications ──▶ Mirror goroutine ──▶ Table ◀── Lookup (workers)
//	  ▲        links, addrs, routes,       state (mutable)      atomic       │
//	  │        neighbours                  │ batch, compile     snapshot     │ Unresolved
//	  │                                    ▼                                 ▼
//	  └──────── RTM_NEWNEIGH NTF_USE ◀── resolver goroutine ◀── queue ◀── Resolve (workers)
//
// [Mirror] subscribes to the kernel's notifications, dumps the current
// state, and then applies notifications in batches, publishing each batch
// as one immutable snapshot through an atomic pointer (read-copy-update).
// A worker's [Table.Lookup] loads the pointer once and reads that
// snapshot: no locks, no allocations, and no torn state, however many
// workers look up at once. Route and link changes recompile the routes
// (O(routes)); neighbour changes, which are far more frequent, copy only
// the neighbour map.
//
// When a lookup finds the route but no usable neighbour entry, it returns
// Unresolved, and the worker calls [Table.Resolve], which queues a request
// without blocking; the mirror's resolver asks the kernel to resolve the
// address as if it had a packet for it. The kernel sends the ARP request
// or neighbour solicitation, the answer makes the entry REACHABLE, the
// notification brings it into the table, and the next lookup is OK. What
// the worker does with the packets meanwhile (hold a few, drop the rest)
// is its business.
//
// For this to work the kernel must see ARP and ND traffic: the XDP
// program in front of the AF_XDP sockets passes ARP and ICMPv6 neighbour
// discovery to the kernel rather than redirecting them.
//
// # Longest-prefix match
//
// Each family has one open-addressing hash table of (masked address,
// prefix length) entries, searched by a binary search on the prefix
// lengths present, with markers that tell the search to go longer (the
// lpm type in lpm.go has the details): at most 5 probes for IPv4 and 8 for
// IPv6, whether the table has ten routes or ten thousand, each probe a
// few multiplies and usually one cache line. Neighbours live in a table
// of the same kind, keyed by interface and address. A lookup costs about
// 25 ns with ten routes and 55 to 80 ns with ten thousand, where the
// tables outgrow the caches (BenchmarkLookup).
//
// # What is mirrored
//
// The main routing table (or the one MirrorOptions names) of one network
// namespace, both families: unicast routes on-link and via gateways,
// default routes, ECMP routes (one next hop per destination, chosen by a
// weighted hash of the destination address), and rejecting routes
// (blackhole, unreachable, prohibit, throw), which make lookups fail
// rather than fall back to a shorter prefix. Of several routes to one
// prefix the lowest metric wins, as in the kernel. Not mirrored: policy
// routing rules and other tables, local, broadcast, multicast, anycast
// and NAT routes (the kernel delivers or handles those itself), routes
// with a TOS selector, IPv6 source-specific routes (`from`, which the
// netlink library does not decode: they read as plain routes), and route
// exceptions such as learned path MTUs.
//
// Known differences from the kernel's own lookup: IPv6 routes to one
// prefix with one metric on several interfaces without a gateway are ECMP
// here, where the kernel uses the first; and next hops whose link has no
// carrier are still used, as the kernel does by default
// (ignore_routes_with_linkdown=0).
package fib
