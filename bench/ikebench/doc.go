// Command ikebench measures the tunnel set-up rate of an IKEv2 responder:
// IKE SAs, each with its first child SA, completed per second, for an espx
// responder (package control, installing into a real dataplane.Dataplane)
// and a strongSwan 5.9.8 charon (kernel-libipsec) responder, in one run,
// driven by the same initiators on the same host. It needs root, iproute2,
// util-linux (taskset, unshare) and strongSwan (charon, swanctl).
//
//	go run ./bench/ikebench [-initiators 250] [-inflight 1] [-rounds 5]
//	                        [-warmup 1s] [-window 5s] [-modes pinned,shared]
//	                        [-systems espx,strongswan] [-idle-wait 5s]
//	                        [-idle-busy 25] [-keep] [-v]
//
// # Topology
//
// Two network namespaces, ikeb-<random>-resp and -init, joined by one veth
// pair (link0 at both ends), created at the start and removed by name at
// the end:
//
//	init link0 ═══════════════════ link0 resp
//	192.0.2.2, 198.51.100.1..N/32    192.0.2.1 (IKE); lo 2001:db8:ffff::1
//
// The traffic selectors are IPv6 inside IPv4 IKE: the responder protects
// 2001:db8:ffff::/64, initiator i 2001:db8:0:i::/64, and the responders'
// remote selector is 2001:db8::/48, narrowed to each initiator's proposal.
// IPv4 selectors would not do: kernel-libipsec refuses a child SA whose
// remote selector holds the peer's IKE address, and the documentation's
// IPv4 ranges have no room for 254 more networks. kernel-libipsec also
// wants a local address inside its local selector (to route into its TUN
// device), hence 2001:db8:ffff::1 on the responder's loopback.
//
// control.UDPTransport asks for 4 MB socket receive buffers (capped by
// net.core.rmem_max, which the harness does not touch) and hands requests
// to one handler goroutine per CPU by initiator SPI. UDP drops in the
// responder's namespace (RcvbufErrors) are counted and reported.
//
// # Initiators
//
// This process runs the initiators: one control.Daemon with its own
// control.UDPTransport per address 198.51.100.i (i = 1..-initiators), each
// keeping -inflight IKE SAs in negotiation at all times (closed loop: when
// one is up, the next starts), with aes128gcm16-prfsha256-x25519 for IKE and
// aes128gcm16 for ESP, a pre-shared key and FQDN identities, the same for
// all. They retransmit on strongSwan's schedule (4 s, then 1.8 times
// longer), twice. Established SAs are kept, not deleted, so that the
// responder does set-up work only; each measurement uses fresh initiators
// and a fresh responder. The initiators' installer only counts the child
// SAs it is given.
//
// # Responders
//
// espx: this program run again as "ikebench responder" inside the
// responder namespace, a control.Daemon on 192.0.2.1 with one PeerConfig per
// initiator address (control's responder finds a peer by the request's
// source address; it has no wildcard), installing child SAs into a real
// dataplane.Dataplane (its SAD builds the runtime inbound and outbound SAs
// with their AEAD instances), with ForceEncap as libipsec forces NAT-T, so
// that both responders float IKE_AUTH to port 4500 and build UDP-
// encapsulated child SAs. Limits: cookie and per-peer thresholds 2^30, no
// half-open or IKE SA limit. Logging: warnings only.
//
// strongSwan: charon with kernel-libipsec in the responder namespace, with a
// private /run (unshare --mount), one connection for 198.51.100.0/24 with
// unique = never, and strongswan.conf settings so that its DoS protection
// does not throttle the benchmark (dos_protection = no, cookie_threshold and
// block_threshold 1000000, init_limit_half_open = 0, init_limit_job_load =
// 0, ikesa_limit = 0) and so that its IKE SA table is a hash table (its
// defaults, ikesa_table_size = 1 and ikesa_table_segments = 1, make it one
// list): 32768 rows in 16 segments. Logging off; 16 threads (the default).
//
// Modes: "pinned" puts the responder on CPU 0 and this process (the
// initiators) on CPU 1; "shared" lets both use both CPUs.
//
// # Counting
//
// After -warmup, the harness counts for -window: at the responder, child
// SAs installed (espx: outbound SAs its installer took; strongSwan: IKE SAs
// established, from swanctl --stats, read at both ends of the window), and
// at the initiators, child SAs installed. An IKE SA whose child SA was
// refused still counts as established at charon, so a measurement fails
// unless the initiators installed at least 90 % as many child SAs as the
// responder counted (the rest are IKE_AUTH responses in flight). It also
// records the responder's CPU time (/proc/PID/stat), this process's, each
// CPU's busy time (/proc/stat), the initiators' retransmissions and
// failures, and the tunnels the initiators completed in each second of the
// window (a responder that slows down as its SAs accumulate shows there).
//
// Everything the harness makes (the two namespaces by name, the responder
// processes by PID, its temporary directory) is removed when it ends, on
// error and on SIGINT or SIGTERM too.
package main
