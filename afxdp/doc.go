// Package afxdp is espx's packet I/O: AF_XDP sockets on NIC queues, the
// UMEM their frames live in, and the XDP program that decides which packets
// the data plane gets and which the kernel keeps. It is built on
// golang.org/x/sys/unix and github.com/cilium/ebpf, and holds no package
// state: everything belongs to a UMEM, a Socket or a Program.
//
// # Frames
//
// A [UMEM] is one mmap'd area cut into aligned 2048- or 4096-byte chunks.
// Any number of sockets share it, on any queues of the two devices a worker
// serves, so a frame received on the protected side is sent on the
// unprotected side from the same chunk, without a copy. Every chunk is in
// exactly one place at any time:
//
//	           Refill                                 Receive
//	UMEM free ────────▶ fill ring ─▶ kernel ─▶ RX ring ────────▶ worker
//	  list                  ▲                                   │  │  │
//	   ▲ ▲                  └────────────── Recycle ────────────┘  │  │
//	   │ │ Complete                                                │  │
//	   │ └─────────── completion ring ◀─ kernel ◀─ TX ring ◀───────┘  │
//	   │                                               Transmit       │
//	   └──────────────────────────── Free ────────────────────────────┘
//
// Sockets record which chunks they lent to the kernel, so [Socket.Close]
// returns exactly those, the UMEM refuses double frees, and
// [UMEM.Accounting] adds the places up. Received packets start
// [KernelHeadroom] plus [UMEMConfig.Headroom] bytes into their chunk: ESP
// encapsulation grows them in place ([UMEM.Chunk] gives the chunk with the
// packet's offset, the shape of dataplane.Frame; [UMEM.Desc] turns it back
// into a descriptor).
//
// # Sockets
//
// [NewSocket] binds one socket to one device queue, trying zero-copy and
// falling back to copy mode (only copy mode exists on veth), with
// need_wakeup, and retries for a while when the kernel still holds the
// queue for a socket just closed (EBUSY). The first socket on a UMEM
// registers it; later ones share it (XDP_SHARED_UMEM) with their own fill
// and completion rings. Each socket is driven by one goroutine at a time,
// in batches: [Socket.Receive], [Socket.Transmit], [Socket.Recycle],
// [Socket.Refill], [Socket.Complete]. The rings keep cached copies of the
// kernel's indices and touch the shared ones with atomic loads and stores.
// Nothing on these paths allocates, and the wakeups (sendto, recvfrom) go
// through RawSyscall6 so that they do not hand the scheduler's P away.
// Transient wakeup errors are counted, never returned. [Socket.Stats]
// reads the kernel's per-socket counters (XDP_STATISTICS) with the
// socket's own.
//
// # The XDP program
//
// A [Program] is built with cilium/ebpf's asm package (no clang), one
// variant per [Side], and attached to one device through a bpf link, native
// first and generic if the driver has no XDP, so that it goes away when
// the process dies, however it dies. It redirects to the socket of the
// receiving queue through an XSKMAP, with XDP_PASS as the fallback, so a
// queue without a socket passes traffic to the kernel. The unprotected side
// sends ESP and ESP in UDP 4500 to the sockets and IKE (UDP 500, UDP 4500
// with the zero marker, NAT-T keepalives), ARP, neighbour discovery,
// multicast and everything else for the gateway's own addresses to the
// kernel; the protected side sends transit traffic to the sockets. The
// gateway's addresses and the sockets can change while the program runs.
// xdpprog.go lists the rules and what the program does not parse.
//
// [QueueCount] tells how many queues a device has, so that the data plane
// can bind one socket to each.
package afxdp
