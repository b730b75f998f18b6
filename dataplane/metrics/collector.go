package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/spd"
)

// namespace prefixes every metric of espx.
const namespace = "espx"

// DefaultMaxSAs is the cap on per-SA series when Options.MaxSAs is 0.
const DefaultMaxSAs = 1000

// Options configure a Collector.
type Options struct {
	// PerSA exports packets, bytes and last use of each SA. It is off by
	// default: a gateway with many tunnels has many SAs, and each rekey
	// starts new series.
	PerSA bool
	// MaxSAs caps the SAs exported with PerSA; the rest are counted in
	// espx_sa_series_omitted. 0 means DefaultMaxSAs.
	MaxSAs int
	// Sockets are the AF_XDP sockets whose statistics to export; none by
	// default.
	Sockets []Socket
}

// Collector is a prometheus.Collector of a data plane's counters. It holds
// no state between scrapes, so it is safe for concurrent scrapes, and it
// reads the workers' counters only when collected.
type Collector struct {
	dp   *dataplane.Dataplane
	opts Options
	// drops are the reasons and their label values, fixed at New.
	drops []dataplane.Drop
	names []string
}

// New returns a collector of dp's counters. Workers added to dp later are
// collected too.
func New(dp *dataplane.Dataplane, opts Options) *Collector {
	if opts.MaxSAs <= 0 {
		opts.MaxSAs = DefaultMaxSAs
	}
	opts.Sockets = append([]Socket(nil), opts.Sockets...)
	c := &Collector{dp: dp, opts: opts, drops: dataplane.Drops()}
	for _, d := range c.drops {
		c.names = append(c.names, d.String())
	}
	return c
}

// sideNames are the side label values, by dataplane.Protected and
// dataplane.Unprotected.
var sideNames = [2]string{dataplane.Protected: "protected", dataplane.Unprotected: "unprotected"}

func sideName(side int) string {
	if side >= 0 && side < len(sideNames) {
		return sideNames[side]
	}
	return strconv.Itoa(side)
}

func newDesc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
}

// Per-core descriptions.
var (
	rxPacketsDesc = newDesc("dataplane", "received_packets_total",
		"Frames received from an interface.", "core", "side")
	rxBytesDesc = newDesc("dataplane", "received_bytes_total",
		"Bytes of frames received from an interface, with Ethernet headers.", "core", "side")
	txPacketsDesc = newDesc("dataplane", "transmitted_packets_total",
		"Frames sent to an interface.", "core", "side")
	txBytesDesc = newDesc("dataplane", "transmitted_bytes_total",
		"Bytes of frames sent to an interface, with Ethernet headers.", "core", "side")
	encPacketsDesc = newDesc("dataplane", "encrypted_packets_total",
		"Packets encapsulated in ESP.", "core")
	encBytesDesc = newDesc("dataplane", "encrypted_bytes_total",
		"Plaintext bytes of packets encapsulated in ESP, before encapsulation.", "core")
	decPacketsDesc = newDesc("dataplane", "decrypted_packets_total",
		"ESP packets decrypted and decapsulated.", "core")
	decBytesDesc = newDesc("dataplane", "decrypted_bytes_total",
		"Plaintext bytes of decapsulated ESP packets, after decapsulation.", "core")
	dropsDesc = newDesc("dataplane", "dropped_packets_total",
		"Packets dropped, by reason.", "core", "reason")
	acquiresDesc = newDesc("dataplane", "acquires_raised_total",
		"Acquires raised: packets that hit a trap policy with no SA and no acquire pending.", "core")
	suppressedDesc = newDesc("dataplane", "acquires_suppressed_total",
		"Packets that hit a trap policy with no SA while an acquire was pending.", "core")
	heldSentDesc = newDesc("dataplane", "held_packets_sent_total",
		"Packets held for an acquire and sent once the SA was installed.", "core")
	neighHeldDesc = newDesc("dataplane", "neighbour_held_packets_total",
		"Packets set aside to wait for a next hop's link-layer address.", "core")
	neighResumedDesc = newDesc("dataplane", "neighbour_resumed_packets_total",
		"Packets that waited for a next hop's link-layer address and went on: sent, or dropped as no_neighbour after waiting too long.", "core")
	fragmentsDesc = newDesc("dataplane", "fragments_made_total",
		"Extra packets made by fragmenting IPv4 packets without DF that would not fit the tunnel whole.", "core")
	icmpDesc = newDesc("dataplane", "icmp_errors_sent_total",
		"ICMP and ICMPv6 errors sent (time exceeded, fragmentation needed, packet too big).", "core")
	spdLookupsDesc = newDesc("dataplane", "spd_lookups_total",
		"Security policy database lookups.", "core")
	spdMatchesDesc = newDesc("dataplane", "spd_matches_total",
		"Security policy database lookups that found a policy, by where: the hash table or the list of policies too short to hash.", "core", "table")
	spdListScansDesc = newDesc("dataplane", "spd_list_scans_total",
		"Security policy database lookups that compared the packet with listed (unhashed) policies.", "core")
	spdListEntriesDesc = newDesc("dataplane", "spd_list_entries_compared_total",
		"Listed (unhashed) policies compared with packets by security policy database lookups.", "core")
)

// Data plane wide descriptions.
var (
	eventsDroppedDesc = newDesc("dataplane", "events_dropped_total",
		"Events to the control plane lost because its queue was full.")
	pendingAcquiresDesc = newDesc("dataplane", "pending_acquires",
		"Acquires raised and not yet answered by an SA or timed out.")
	policiesDesc = newDesc("dataplane", "spd_policies",
		"Policies in the security policy database, by direction.", "direction")
	hashedDesc = newDesc("dataplane", "spd_hashed_policies",
		"Policies in the security policy database's hash table rather than its lists.")
	bucketsDesc = newDesc("dataplane", "spd_hash_buckets",
		"Buckets of the security policy database's hash table.")
	sasDesc = newDesc("dataplane", "sas",
		"Installed SAs, by direction.", "direction")
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		rxPacketsDesc, rxBytesDesc, txPacketsDesc, txBytesDesc,
		encPacketsDesc, encBytesDesc, decPacketsDesc, decBytesDesc,
		dropsDesc, acquiresDesc, suppressedDesc, heldSentDesc, neighHeldDesc, neighResumedDesc, fragmentsDesc, icmpDesc, spdLookupsDesc,
		spdMatchesDesc, spdListScansDesc, spdListEntriesDesc,
		eventsDroppedDesc, pendingAcquiresDesc, policiesDesc, hashedDesc, bucketsDesc, sasDesc,
	} {
		ch <- d
	}
	if c.opts.PerSA {
		describeSAs(ch)
	}
	if len(c.opts.Sockets) > 0 {
		describeSockets(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, w := range c.dp.Workers() {
		c.collectCore(ch, strconv.Itoa(w.ID()), w.C.Snapshot())
	}
	ch <- prometheus.MustNewConstMetric(eventsDroppedDesc, prometheus.CounterValue, float64(c.dp.EventsDropped()))
	ch <- prometheus.MustNewConstMetric(pendingAcquiresDesc, prometheus.GaugeValue, float64(c.dp.PendingAcquires()))
	st := c.dp.SPD.Stats()
	for dir, n := range st.Policies {
		ch <- prometheus.MustNewConstMetric(policiesDesc, prometheus.GaugeValue, float64(n), spd.Dir(dir).String())
	}
	ch <- prometheus.MustNewConstMetric(hashedDesc, prometheus.GaugeValue, float64(st.Hashed))
	ch <- prometheus.MustNewConstMetric(bucketsDesc, prometheus.GaugeValue, float64(st.Buckets))
	c.collectSAs(ch, c.dp.SAs())
	for _, s := range c.opts.Sockets {
		collectSocket(ch, s)
	}
}

// collectCore sends one worker's counters.
func (c *Collector) collectCore(ch chan<- prometheus.Metric, core string, s dataplane.CounterSnapshot) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for side := range s.RxPackets {
		name := sideName(side)
		counter(rxPacketsDesc, s.RxPackets[side], core, name)
		counter(rxBytesDesc, s.RxBytes[side], core, name)
		counter(txPacketsDesc, s.TxPackets[side], core, name)
		counter(txBytesDesc, s.TxBytes[side], core, name)
	}
	counter(encPacketsDesc, s.EncapPackets, core)
	counter(encBytesDesc, s.EncapBytes, core)
	counter(decPacketsDesc, s.DecapPackets, core)
	counter(decBytesDesc, s.DecapBytes, core)
	for i, d := range c.drops {
		counter(dropsDesc, s.Drops[d], core, c.names[i])
	}
	counter(acquiresDesc, s.Acquires, core)
	counter(suppressedDesc, s.AcquiresSuppressed, core)
	counter(heldSentDesc, s.HeldSent, core)
	counter(neighHeldDesc, s.NeighHeld, core)
	counter(neighResumedDesc, s.NeighResumed, core)
	counter(fragmentsDesc, s.Fragments, core)
	counter(icmpDesc, s.ICMPSent, core)
	counter(spdLookupsDesc, s.SPDLookups, core)
	counter(spdMatchesDesc, s.SPDHashedHits, core, "hash")
	counter(spdMatchesDesc, s.SPDListHits, core, "list")
	counter(spdListScansDesc, s.SPDListScans, core)
	counter(spdListEntriesDesc, s.SPDListEntries, core)
}
