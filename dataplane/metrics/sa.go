package metrics

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/espx/espx/dataplane"
)

// Per-SA descriptions. spi is the SPI in hex as ip xfrm shows it,
// direction "inbound" or "outbound", reqid the SA's request ID, which ties
// the two directions of a child SA and its policies together.
var (
	saLabels      = []string{"spi", "direction", "reqid"}
	saPacketsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "sa", "packets_total"),
		"Packets carried by an SA.", saLabels, nil)
	saBytesDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "sa", "bytes_total"),
		"Plaintext bytes carried by an SA.", saLabels, nil)
	saLastUseDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "sa", "last_use_timestamp_seconds"),
		"When an SA last carried a packet, in seconds since the Unix epoch; absent until it has.", saLabels, nil)
	saDroppedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "sa", "dropped_packets_total"),
		"Packets an inbound SA dropped: replays, sequence numbers left of the window (too_old), ICVs that did not verify (auth_failed).",
		append(slices.Clone(saLabels), "reason"), nil)
	saOmittedDesc = newDesc("sa", "series_omitted",
		"Installed SAs without per-SA series because of the configured maximum.")
)

func describeSAs(ch chan<- *prometheus.Desc) {
	ch <- saPacketsDesc
	ch <- saBytesDesc
	ch <- saLastUseDesc
	ch <- saDroppedDesc
	ch <- saOmittedDesc
}

func direction(inbound bool) string {
	if inbound {
		return "inbound"
	}
	return "outbound"
}

// collectSAs sends the number of SAs by direction and, with PerSA, the
// series of up to MaxSAs of them.
func (c *Collector) collectSAs(ch chan<- prometheus.Metric, sas []dataplane.SAInfo) {
	var n [2]int // outbound, inbound
	for i := range sas {
		if sas[i].Inbound {
			n[1]++
		} else {
			n[0]++
		}
	}
	ch <- prometheus.MustNewConstMetric(sasDesc, prometheus.GaugeValue, float64(n[1]), direction(true))
	ch <- prometheus.MustNewConstMetric(sasDesc, prometheus.GaugeValue, float64(n[0]), direction(false))
	if !c.opts.PerSA {
		return
	}
	omitted := 0
	if len(sas) > c.opts.MaxSAs {
		// Keep the lowest SPIs whatever their direction: the choice
		// stays the same from one scrape to the next, so series do not
		// come and go while the SAs do not, and neither direction
		// crowds out the other (SAs lists all inbound SAs first).
		slices.SortFunc(sas, func(a, b dataplane.SAInfo) int {
			return cmp.Or(cmp.Compare(a.SPI, b.SPI), cmp.Compare(direction(a.Inbound), direction(b.Inbound)))
		})
		omitted = len(sas) - c.opts.MaxSAs
		sas = sas[:c.opts.MaxSAs]
	}
	ch <- prometheus.MustNewConstMetric(saOmittedDesc, prometheus.GaugeValue, float64(omitted))
	for i := range sas {
		sa := &sas[i]
		labels := []string{fmt.Sprintf("0x%08x", sa.SPI), direction(sa.Inbound), strconv.FormatUint(sa.ReqID, 10)}
		ch <- prometheus.MustNewConstMetric(saPacketsDesc, prometheus.CounterValue, float64(sa.Packets), labels...)
		ch <- prometheus.MustNewConstMetric(saBytesDesc, prometheus.CounterValue, float64(sa.Bytes), labels...)
		if sa.Inbound {
			for _, r := range []struct {
				reason string
				n      uint64
			}{{"replay", sa.Replay}, {"too_old", sa.TooOld}, {"auth_failed", sa.AuthFailed}} {
				ch <- prometheus.MustNewConstMetric(saDroppedDesc, prometheus.CounterValue, float64(r.n), append(labels, r.reason)...)
			}
		}
		if !sa.LastUse.IsZero() {
			ch <- prometheus.MustNewConstMetric(saLastUseDesc, prometheus.GaugeValue,
				float64(sa.LastUse.UnixNano())/1e9, labels...)
		}
	}
}
