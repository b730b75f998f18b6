// Package metrics exports the data plane's counters to Prometheus.
//
// The data plane never imports Prometheus: each worker keeps plain,
// cache-line padded [dataplane.Counters] that only it writes. A [Collector]
// reads them when Prometheus scrapes, labels them by worker (the core label,
// one worker per core), and forgets them again. Nothing here runs between
// scrapes and nothing touches the per-packet path: no goroutines, no hooks,
// no per-packet cost beyond what the workers already count.
//
// # Names
//
// Names follow node_exporter's conventions: namespace espx, a subsystem
// (dataplane, sa, xdp), base units, _total on counters and bytes as
// _bytes_total. Every drop reason is exported for every core, zero
// included, so that rate() over a reason that has not happened yet is 0
// rather than absent.
//
//	espx_dataplane_received_packets_total{core,side}     frames from an interface
//	espx_dataplane_received_bytes_total{core,side}
//	espx_dataplane_transmitted_packets_total{core,side}  frames to an interface
//	espx_dataplane_transmitted_bytes_total{core,side}
//	espx_dataplane_encrypted_packets_total{core}
//	espx_dataplane_encrypted_bytes_total{core}           plaintext bytes
//	espx_dataplane_decrypted_packets_total{core}
//	espx_dataplane_decrypted_bytes_total{core}           plaintext bytes
//	espx_dataplane_dropped_packets_total{core,reason}
//	espx_dataplane_acquires_raised_total{core}
//	espx_dataplane_acquires_suppressed_total{core}
//	espx_dataplane_held_packets_sent_total{core}
//	espx_dataplane_neighbour_held_packets_total{core}
//	espx_dataplane_neighbour_resumed_packets_total{core}
//	espx_dataplane_fragments_made_total{core}
//	espx_dataplane_icmp_errors_sent_total{core}
//	espx_dataplane_spd_lookups_total{core}
//	espx_dataplane_spd_matches_total{core,table}         table: hash, list
//	espx_dataplane_spd_list_scans_total{core}            lookups that scanned the list
//	espx_dataplane_spd_list_entries_compared_total{core}
//	espx_dataplane_events_dropped_total
//	espx_dataplane_pending_acquires                      gauge
//	espx_dataplane_spd_policies{direction}               gauge: in, out, fwd
//	espx_dataplane_spd_hashed_policies                   gauge
//	espx_dataplane_spd_hash_buckets                      gauge
//	espx_dataplane_sas{direction}                        gauge: inbound, outbound
//
// side is "protected" or "unprotected"; reason is [dataplane.Drop]'s
// String. With [Options.PerSA], up to [Options.MaxSAs] SAs get their own
// series, labelled spi (hex), direction and reqid:
//
//	espx_sa_packets_total
//	espx_sa_bytes_total                                  plaintext bytes
//	espx_sa_last_use_timestamp_seconds                   gauge, once used
//	espx_sa_dropped_packets_total{reason}                inbound: replay, too_old, auth_failed
//	espx_sa_series_omitted                               gauge: SAs over the cap
//
// With [Options.Sockets], each AF_XDP socket's own and kernel statistics
// ([afxdp.Stats]) are exported under espx_xdp_, labelled core, side,
// ifindex and queue; see [Socket].
//
// # Serving
//
// [Serve] and [ServeListener] serve /metrics with promhttp from a registry
// holding the collector and the Go and process collectors. A program with
// its own registry registers the [Collector] there instead.
package metrics
