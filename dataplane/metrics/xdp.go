package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/espx/espx/afxdp"
)

// SocketStats is an AF_XDP socket as the collector reads it; *afxdp.Socket
// implements it.
type SocketStats interface {
	// Stats returns the socket's own counters and the kernel's; with an
	// error, the kernel's are missing (a closed socket).
	Stats() (afxdp.Stats, error)
	Ifindex() int
	Queue() int
}

// Socket is an AF_XDP socket to export, with the worker that drives it and
// the side of that worker it is on, so that its series share the core and
// side labels of the worker's.
type Socket struct {
	Core  int // the worker's ID
	Side  int // dataplane.Protected or dataplane.Unprotected
	Stats SocketStats
}

// AF_XDP socket descriptions, all labelled by xdpLabels.
var (
	xdpLabels = []string{"core", "side", "ifindex", "queue"}

	xdpRxDesc = xdpDesc("received_packets_total",
		"Descriptors taken from the socket's RX ring.")
	xdpTxDesc = xdpDesc("transmitted_packets_total",
		"Descriptors posted to the socket's TX ring.")
	xdpCompletedDesc = xdpDesc("completed_packets_total",
		"Descriptors returned through the socket's completion ring.")
	xdpLentDesc = xdpDesc("lent_frames",
		"UMEM frames the socket has lent to the kernel.")
	xdpWakeupsDesc = xdpDesc("wakeups_total",
		"System calls made to wake the kernel up, by ring.", "ring")
	xdpWakeupErrorsDesc = xdpDesc("wakeup_errors_total",
		"Wakeup system calls that failed, by errno; none is fatal.", "errno")
	xdpInvalidDesc = xdpDesc("invalid_descriptors_total",
		"Descriptors refused by the socket's own checks, by ring.", "ring")
	xdpBindRetriesDesc = xdpDesc("bind_retries_total",
		"Binds retried after EBUSY.")
	xdpCopyModeDesc = xdpDesc("zero_copy_fallback",
		"1 if zero-copy could not be bound and the socket runs in copy mode.")

	xdpKernelUpDesc = xdpDesc("kernel_stats_success",
		"1 if the kernel's statistics (XDP_STATISTICS) of the socket could be read.")
	xdpKernelDroppedDesc = xdpDesc("kernel_dropped_packets_total",
		"Packets for the socket the kernel dropped, mostly for want of a fill ring buffer.")
	xdpKernelInvalidDesc = xdpDesc("kernel_invalid_descriptors_total",
		"Descriptors the kernel refused, by ring.", "ring")
	xdpKernelRxFullDesc = xdpDesc("kernel_rx_ring_full_total",
		"Packets the kernel dropped because the socket's RX ring was full.")
	xdpKernelFillEmptyDesc = xdpDesc("kernel_fill_ring_empty_total",
		"Times the kernel found the socket's fill ring empty.")
	xdpKernelTxEmptyDesc = xdpDesc("kernel_tx_ring_empty_total",
		"Times the kernel found the socket's TX ring empty when woken.")
)

func xdpDesc(name, help string, extra ...string) *prometheus.Desc {
	labels := append(append([]string(nil), xdpLabels...), extra...)
	return newDesc("xdp", name, help, labels...)
}

func describeSockets(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		xdpRxDesc, xdpTxDesc, xdpCompletedDesc, xdpLentDesc, xdpWakeupsDesc, xdpWakeupErrorsDesc,
		xdpInvalidDesc, xdpBindRetriesDesc, xdpCopyModeDesc, xdpKernelUpDesc, xdpKernelDroppedDesc,
		xdpKernelInvalidDesc, xdpKernelRxFullDesc, xdpKernelFillEmptyDesc, xdpKernelTxEmptyDesc,
	} {
		ch <- d
	}
}

// collectSocket sends one socket's statistics. When the kernel's cannot be
// read, the socket's own still go out and kernel_stats_success says 0, as
// node_exporter's scrape_collector_success does: one closed socket must not
// fail the whole scrape.
func collectSocket(ch chan<- prometheus.Metric, s Socket) {
	st, err := s.Stats.Stats()
	labels := []string{strconv.Itoa(s.Core), sideName(s.Side), strconv.Itoa(s.Stats.Ifindex()), strconv.Itoa(s.Stats.Queue())}
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, append(labels[:len(labels):len(labels)], extra...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, extra ...string) {
		send(d, prometheus.CounterValue, float64(v), extra...)
	}
	counter(xdpRxDesc, st.RxPackets)
	counter(xdpTxDesc, st.TxPackets)
	counter(xdpCompletedDesc, st.Completed)
	send(xdpLentDesc, prometheus.GaugeValue, float64(st.Lent))
	counter(xdpWakeupsDesc, st.RxWakeups, "fill")
	counter(xdpWakeupsDesc, st.TxWakeups, "tx")
	counter(xdpWakeupErrorsDesc, st.WakeupEAGAIN, "EAGAIN")
	counter(xdpWakeupErrorsDesc, st.WakeupENOBUFS, "ENOBUFS")
	counter(xdpWakeupErrorsDesc, st.WakeupEBUSY, "EBUSY")
	counter(xdpWakeupErrorsDesc, st.WakeupENETDOWN, "ENETDOWN")
	counter(xdpWakeupErrorsDesc, st.WakeupOther, "other")
	counter(xdpInvalidDesc, st.RxInvalid, "rx")
	counter(xdpInvalidDesc, st.FillInvalid, "fill")
	counter(xdpInvalidDesc, st.TxInvalid, "tx")
	counter(xdpInvalidDesc, st.CompletionInvalid, "completion")
	counter(xdpBindRetriesDesc, st.BindRetries)
	send(xdpCopyModeDesc, prometheus.GaugeValue, float64(st.ZeroCopyFallbacks))
	if err != nil {
		send(xdpKernelUpDesc, prometheus.GaugeValue, 0)
		return
	}
	send(xdpKernelUpDesc, prometheus.GaugeValue, 1)
	k := st.Kernel
	counter(xdpKernelDroppedDesc, k.RxDropped)
	counter(xdpKernelInvalidDesc, k.RxInvalidDescs, "rx")
	counter(xdpKernelInvalidDesc, k.TxInvalidDescs, "tx")
	counter(xdpKernelRxFullDesc, k.RxRingFull)
	counter(xdpKernelFillEmptyDesc, k.RxFillRingEmpty)
	counter(xdpKernelTxEmptyDesc, k.TxRingEmpty)
}
