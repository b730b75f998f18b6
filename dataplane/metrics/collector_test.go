package metrics

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/espx/espx/afxdp"
	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/dataplane/internal/fakeport"
)

// scrape gathers c through a pedantic registry, which also checks that
// every metric collected was described and is consistent, and returns the
// values by series, written name{label="value",...} with labels sorted.
func scrape(tb testing.TB, c prometheus.Collector) map[string]float64 {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		tb.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[seriesName(mf.GetName(), m.GetLabel())] = value(mf.GetType(), m)
		}
	}
	return out
}

func seriesName(name string, labels []*dto.LabelPair) string {
	var ls []string
	for _, l := range labels {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// series writes a series name as scrape does from labels written
// `name="value"`, joined by commas or not, in any order.
func series(name string, labels ...string) string {
	var ls []string
	for _, l := range labels {
		ls = append(ls, strings.Split(l, ",")...)
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	if t == dto.MetricType_COUNTER {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// check compares the series in want with got.
func check(tb testing.TB, got map[string]float64, want map[string]float64) {
	tb.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, ok := got[k]
		switch {
		case !ok:
			tb.Errorf("%s missing", k)
		case v != want[k]:
			tb.Errorf("%s = %v, want %v", k, v, want[k])
		}
	}
}

// count is how many series of metric name got has.
func count(got map[string]float64, name string) int {
	n := 0
	for k := range got {
		if strings.HasPrefix(k, name+"{") {
			n++
		}
	}
	return n
}

// checkDrops checks that every reason of core is there and that the
// reasons in want have those counts and the others none.
func checkDrops(tb testing.TB, got map[string]float64, core string, want map[dataplane.Drop]float64) {
	tb.Helper()
	for _, d := range dataplane.Drops() {
		k := fmt.Sprintf(`espx_dataplane_dropped_packets_total{core=%q,reason=%q}`, core, d)
		v, ok := got[k]
		if !ok {
			tb.Errorf("%s missing", k)
		} else if v != want[d] {
			tb.Errorf("%s = %v, want %v", k, v, want[d])
		}
	}
}

// TestCollectorTraffic runs packets from host A through gateways A and B
// to host B, then replays B's ESP, and checks what both collectors report
// against what went through the fake links.
func TestCollectorTraffic(t *testing.T) {
	start := time.Now()
	a, b := newPair(t)
	const n, payload = 5, 100
	frameLen := 14 + 20 + 8 + payload
	for range n {
		a.prot.Queue(t, udpFrame(hostA, hostB, payload))
	}
	a.prot.Queue(t, arpFrame())
	a.poll()
	wire := a.unprot.Take()
	if len(wire) != n {
		t.Fatalf("gateway A sent %d ESP frames, want %d", len(wire), n)
	}
	wireBytes := 0
	for _, f := range wire {
		wireBytes += len(f)
	}
	b.unprot.Queue(t, wire...)
	b.poll()
	if got := len(b.prot.Take()); got != n {
		t.Fatalf("gateway B delivered %d frames, want %d", got, n)
	}
	b.unprot.Queue(t, wire...) // replayed
	b.poll()
	end := time.Now()

	ca := New(a.dp, Options{PerSA: true})
	ga := scrape(t, ca)
	check(t, ga, map[string]float64{
		`espx_dataplane_received_packets_total{core="0",side="protected"}`:       n + 1,
		`espx_dataplane_received_bytes_total{core="0",side="protected"}`:         float64(n*frameLen + len(arpFrame())),
		`espx_dataplane_received_packets_total{core="0",side="unprotected"}`:     0,
		`espx_dataplane_transmitted_packets_total{core="0",side="unprotected"}`:  n,
		`espx_dataplane_transmitted_bytes_total{core="0",side="unprotected"}`:    float64(wireBytes),
		`espx_dataplane_transmitted_packets_total{core="0",side="protected"}`:    0,
		`espx_dataplane_encrypted_packets_total{core="0"}`:                       n,
		`espx_dataplane_encrypted_bytes_total{core="0"}`:                         float64(n * (frameLen - 14)),
		`espx_dataplane_decrypted_packets_total{core="0"}`:                       0,
		`espx_dataplane_spd_lookups_total{core="0"}`:                             n + 1,
		`espx_dataplane_acquires_raised_total{core="0"}`:                         0,
		`espx_dataplane_acquires_suppressed_total{core="0"}`:                     0,
		`espx_dataplane_held_packets_sent_total{core="0"}`:                       0,
		`espx_dataplane_icmp_errors_sent_total{core="0"}`:                        0,
		`espx_dataplane_events_dropped_total{}`:                                  0,
		`espx_dataplane_pending_acquires{}`:                                      0,
		`espx_dataplane_spd_policies{direction="out"}`:                           1,
		`espx_dataplane_spd_policies{direction="fwd"}`:                           1,
		`espx_dataplane_spd_policies{direction="in"}`:                            0,
		`espx_dataplane_sas{direction="inbound"}`:                                1,
		`espx_dataplane_sas{direction="outbound"}`:                               1,
		`espx_sa_packets_total{direction="outbound",reqid="7",spi="0x00001001"}`: n,
		`espx_sa_bytes_total{direction="outbound",reqid="7",spi="0x00001001"}`:   float64(n * (frameLen - 14)),
		`espx_sa_packets_total{direction="inbound",reqid="7",spi="0x00002001"}`:  0,
		`espx_sa_series_omitted{}`:                                               0,
	})
	checkDrops(t, ga, "0", map[dataplane.Drop]float64{dataplane.DropNotIP: 1})
	if _, ok := ga[`espx_sa_last_use_timestamp_seconds{direction="inbound",reqid="7",spi="0x00002001"}`]; ok {
		t.Error("last use of an unused SA exported")
	}
	lu := ga[`espx_sa_last_use_timestamp_seconds{direction="outbound",reqid="7",spi="0x00001001"}`]
	if lo, hi := float64(start.UnixNano())/1e9, float64(end.UnixNano())/1e9; lu < lo || lu > hi {
		t.Errorf("last use %v, want between %v and %v", lu, lo, hi)
	}

	gb := scrape(t, New(b.dp, Options{}))
	check(t, gb, map[string]float64{
		`espx_dataplane_received_packets_total{core="0",side="unprotected"}`:  2 * n,
		`espx_dataplane_received_bytes_total{core="0",side="unprotected"}`:    float64(2 * wireBytes),
		`espx_dataplane_decrypted_packets_total{core="0"}`:                    n,
		`espx_dataplane_decrypted_bytes_total{core="0"}`:                      float64(n * (frameLen - 14)),
		`espx_dataplane_transmitted_packets_total{core="0",side="protected"}`: n,
		`espx_dataplane_transmitted_bytes_total{core="0",side="protected"}`:   float64(n * frameLen),
		`espx_dataplane_encrypted_packets_total{core="0"}`:                    0,
	})
	checkDrops(t, gb, "0", map[dataplane.Drop]float64{dataplane.DropReplay: n})
	if k := count(gb, "espx_sa_packets_total") + count(gb, "espx_sa_series_omitted"); k != 0 {
		t.Errorf("%d per-SA series without PerSA", k)
	}
	// Per SA, B's inbound SA counts the replays it dropped.
	check(t, scrape(t, New(b.dp, Options{PerSA: true})), map[string]float64{
		`espx_sa_packets_total{direction="inbound",reqid="7",spi="0x00001001"}`:                              n,
		`espx_sa_dropped_packets_total{direction="inbound",reason="replay",reqid="7",spi="0x00001001"}`:      n,
		`espx_sa_dropped_packets_total{direction="inbound",reason="auth_failed",reqid="7",spi="0x00001001"}`: 0,
		`espx_sa_dropped_packets_total{direction="inbound",reason="too_old",reqid="7",spi="0x00001001"}`:     0,
	})

	// The values are the data plane's, not a copy that drifts from it.
	s := b.w.C.Snapshot()
	if got := gb[`espx_dataplane_spd_lookups_total{core="0"}`]; got != float64(s.SPDLookups) {
		t.Errorf("spd lookups %v, counters say %d", got, s.SPDLookups)
	}
	// The fake gateways keep the default thresholds, so their /24 policies
	// are listed: every decrypted packet's lookup scanned the list.
	for name, want := range map[string]uint64{
		`espx_dataplane_spd_matches_total{core="0",table="list"}`:  s.SPDListHits,
		`espx_dataplane_spd_matches_total{core="0",table="hash"}`:  s.SPDHashedHits,
		`espx_dataplane_spd_list_scans_total{core="0"}`:            s.SPDListScans,
		`espx_dataplane_spd_list_entries_compared_total{core="0"}`: s.SPDListEntries,
	} {
		if got := gb[name]; got != float64(want) {
			t.Errorf("%s %v, counters say %d", name, got, want)
		}
	}
	if s.SPDListHits != n || s.SPDHashedHits != 0 || s.SPDListScans < n {
		t.Errorf("spd list hits %d, hashed %d, list scans %d; want %v, 0, >= %v", s.SPDListHits, s.SPDHashedHits, s.SPDListScans, n, n)
	}
}

// TestCollectorExposition checks a few series as Prometheus reads them,
// with their help and type.
func TestCollectorExposition(t *testing.T) {
	a, _ := newPair(t)
	a.prot.Queue(t, udpFrame(hostA, hostB, 10), udpFrame(hostA, hostB, 10))
	a.poll()
	const want = `
# HELP espx_dataplane_encrypted_packets_total Packets encapsulated in ESP.
# TYPE espx_dataplane_encrypted_packets_total counter
espx_dataplane_encrypted_packets_total{core="0"} 2
# HELP espx_dataplane_sas Installed SAs, by direction.
# TYPE espx_dataplane_sas gauge
espx_dataplane_sas{direction="inbound"} 1
espx_dataplane_sas{direction="outbound"} 1
`
	err := testutil.CollectAndCompare(New(a.dp, Options{}), strings.NewReader(want),
		"espx_dataplane_encrypted_packets_total", "espx_dataplane_sas")
	if err != nil {
		t.Error(err)
	}
}

// TestCollectorCores checks that each worker is its own core, workers
// added after New included, and that a data plane without workers still
// collects.
func TestCollectorCores(t *testing.T) {
	dp, err := dataplane.New(dataplane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := New(dp, Options{})
	got := scrape(t, c)
	if k := count(got, "espx_dataplane_dropped_packets_total"); k != 0 {
		t.Errorf("%d drop series without workers", k)
	}
	check(t, got, map[string]float64{`espx_dataplane_sas{direction="inbound"}`: 0})

	u := fakeport.NewUMEM(t, 1024)
	for range 3 {
		if _, err := dp.AddWorker(dataplane.WorkerConfig{
			Protected: &fakeport.Port{Index: ifProt, Mem: u}, Unprotected: &fakeport.Port{Index: ifUnprot, Mem: u},
			Mem: u, Router: fakeRouter{}, CPU: -1,
		}); err != nil {
			t.Fatal(err)
		}
	}
	w := dp.Workers()[2]
	w.C.ICMPSent.Store(42) // as the worker publishes it
	got = scrape(t, c)
	if k, want := count(got, "espx_dataplane_dropped_packets_total"), 3*len(dataplane.Drops()); k != want {
		t.Errorf("%d drop series, want %d", k, want)
	}
	if k := count(got, "espx_dataplane_received_packets_total"); k != 3*2 {
		t.Errorf("%d received series, want 6", k)
	}
	check(t, got, map[string]float64{
		`espx_dataplane_icmp_errors_sent_total{core="0"}`: 0,
		`espx_dataplane_icmp_errors_sent_total{core="2"}`: 42,
	})
}

// TestCollectorSACap checks that per-SA series stop at MaxSAs, keep the
// lowest SPIs of both directions, and say how many were left out.
func TestCollectorSACap(t *testing.T) {
	dp, err := dataplane.New(dataplane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range []struct {
		spi     uint32
		inbound bool
	}{{0x300, true}, {0x100, true}, {0x500, true}, {0x200, false}, {0x400, false}} {
		cfg := dataplane.SAConfig{SPI: sa.spi, ReqID: uint64(sa.spi), Transform: gcm(sa.spi), Src: outerA, Dst: outerB}
		if err := dp.AddSA(dataplane.SA{SAConfig: cfg, Inbound: sa.inbound}); err != nil {
			t.Fatal(err)
		}
	}
	got := scrape(t, New(dp, Options{PerSA: true, MaxSAs: 3}))
	check(t, got, map[string]float64{
		`espx_dataplane_sas{direction="inbound"}`:                                  3,
		`espx_dataplane_sas{direction="outbound"}`:                                 2,
		`espx_sa_series_omitted{}`:                                                 2,
		`espx_sa_packets_total{direction="inbound",reqid="256",spi="0x00000100"}`:  0,
		`espx_sa_packets_total{direction="outbound",reqid="512",spi="0x00000200"}`: 0,
		`espx_sa_packets_total{direction="inbound",reqid="768",spi="0x00000300"}`:  0,
		`espx_sa_bytes_total{direction="inbound",reqid="768",spi="0x00000300"}`:    0,
	})
	if k := count(got, "espx_sa_packets_total"); k != 3 {
		t.Errorf("%d SAs exported, want 3", k)
	}
	if k := count(got, "espx_sa_last_use_timestamp_seconds"); k != 0 {
		t.Errorf("%d last use series of unused SAs", k)
	}

	got = scrape(t, New(dp, Options{PerSA: true}))
	check(t, got, map[string]float64{`espx_sa_series_omitted{}`: 0})
	if k := count(got, "espx_sa_packets_total"); k != 5 {
		t.Errorf("%d SAs exported under the default cap, want 5", k)
	}
}

// TestCollectorSockets checks the AF_XDP statistics of two sockets, one of
// which cannot give the kernel's.
func TestCollectorSockets(t *testing.T) {
	dp, err := dataplane.New(dataplane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ok := &fakeSocket{ifindex: 4, queue: 1, st: afxdp.Stats{
		RxPackets: 100, TxPackets: 90, Completed: 80, Lent: 2048,
		RxWakeups: 7, TxWakeups: 8, WakeupEAGAIN: 3, WakeupOther: 1, TxInvalid: 2,
		BindRetries: 1, ZeroCopyFallbacks: 1,
		Kernel: afxdp.KernelStats{RxDropped: 11, RxInvalidDescs: 12, TxInvalidDescs: 13, RxRingFull: 14, RxFillRingEmpty: 15, TxRingEmpty: 16},
	}}
	closed := &fakeSocket{ifindex: 5, queue: 1, st: afxdp.Stats{RxPackets: 3}, err: fmt.Errorf("XDP_STATISTICS: %w", afxdp.ErrClosed)}
	c := New(dp, Options{Sockets: []Socket{
		{Core: 1, Side: dataplane.Protected, Stats: ok},
		{Core: 1, Side: dataplane.Unprotected, Stats: closed},
	}})
	got := scrape(t, c)
	const p = `core="1",ifindex="4",queue="1",side="protected"`
	const u = `core="1",ifindex="5",queue="1",side="unprotected"`
	check(t, got, map[string]float64{
		`espx_xdp_received_packets_total{` + p + `}`:                         100,
		`espx_xdp_transmitted_packets_total{` + p + `}`:                      90,
		`espx_xdp_completed_packets_total{` + p + `}`:                        80,
		`espx_xdp_lent_frames{` + p + `}`:                                    2048,
		series(`espx_xdp_wakeups_total`, p, `ring="fill"`):                   7,
		series(`espx_xdp_wakeups_total`, p, `ring="tx"`):                     8,
		series(`espx_xdp_wakeup_errors_total`, p, `errno="EAGAIN"`):          3,
		series(`espx_xdp_wakeup_errors_total`, p, `errno="ENOBUFS"`):         0,
		series(`espx_xdp_wakeup_errors_total`, p, `errno="other"`):           1,
		series(`espx_xdp_invalid_descriptors_total`, p, `ring="tx"`):         2,
		series(`espx_xdp_invalid_descriptors_total`, p, `ring="completion"`): 0,
		`espx_xdp_bind_retries_total{` + p + `}`:                             1,
		`espx_xdp_zero_copy_fallback{` + p + `}`:                             1,
		`espx_xdp_kernel_stats_success{` + p + `}`:                           1,
		`espx_xdp_kernel_dropped_packets_total{` + p + `}`:                   11,
		series(`espx_xdp_kernel_invalid_descriptors_total`, p, `ring="rx"`):  12,
		series(`espx_xdp_kernel_invalid_descriptors_total`, p, `ring="tx"`):  13,
		`espx_xdp_kernel_rx_ring_full_total{` + p + `}`:                      14,
		`espx_xdp_kernel_fill_ring_empty_total{` + p + `}`:                   15,
		`espx_xdp_kernel_tx_ring_empty_total{` + p + `}`:                     16,
		`espx_xdp_received_packets_total{` + u + `}`:                         3,
		`espx_xdp_kernel_stats_success{` + u + `}`:                           0,
	})
	if _, bad := got[`espx_xdp_kernel_dropped_packets_total{`+u+`}`]; bad {
		t.Error("kernel statistics exported for a socket that could not give them")
	}
	if k := count(got, "espx_xdp_kernel_rx_ring_full_total"); k != 1 {
		t.Errorf("%d kernel series, want 1", k)
	}

	// Without sockets there is no espx_xdp_ at all.
	got = scrape(t, New(dp, Options{}))
	for k := range got {
		if strings.HasPrefix(k, "espx_xdp_") {
			t.Errorf("%s without sockets", k)
		}
	}
}

// TestCollectorLint runs promtool's checks over every metric the collector
// can export.
func TestCollectorLint(t *testing.T) {
	a, _ := newPair(t)
	a.prot.Queue(t, udpFrame(hostA, hostB, 10))
	a.poll()
	c := New(a.dp, Options{PerSA: true, Sockets: []Socket{{Core: 0, Side: dataplane.Protected, Stats: &fakeSocket{ifindex: 1}}}})
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(c, "espx_sa_last_use_timestamp_seconds"); n != 1 {
		t.Errorf("%d last use series, want 1", n)
	}
}

// TestCollectorConcurrent scrapes from two goroutines while a worker runs
// flat out: the race detector checks the reads, and every counter read
// must be at least the one before.
func TestCollectorConcurrent(t *testing.T) {
	a, _ := newPair(t)
	a.prot.Gen = udpFrame(hostA, hostB, 64)
	a.unprot.Discard = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	c := New(a.dp, Options{PerSA: true})
	const key = `espx_dataplane_encrypted_packets_total{core="0"}`
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			last := 0.0
			for range 20 {
				reg := prometheus.NewRegistry()
				reg.MustRegister(c)
				mfs, err := reg.Gather()
				if err != nil {
					errs <- err
					return
				}
				for _, mf := range mfs {
					for _, m := range mf.GetMetric() {
						if seriesName(mf.GetName(), m.GetLabel()) != key {
							continue
						}
						v := m.GetCounter().GetValue()
						if v < last {
							errs <- fmt.Errorf("%s went back from %v to %v", key, last, v)
							return
						}
						last = v
					}
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, c)[key] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no packets encrypted while running")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDescribe checks that Describe sends the per-SA and socket
// descriptions only when they are configured.
func TestDescribe(t *testing.T) {
	dp, err := dataplane.New(dataplane.Config{})
	if err != nil {
		t.Fatal(err)
	}
	descs := func(o Options) []string {
		ch := make(chan *prometheus.Desc, 100)
		New(dp, o).Describe(ch)
		close(ch)
		var s []string
		for d := range ch {
			s = append(s, d.String())
		}
		return s
	}
	has := func(ds []string, name string) bool {
		return slices.ContainsFunc(ds, func(d string) bool { return strings.Contains(d, `"`+name+`"`) })
	}
	base := descs(Options{})
	if !has(base, "espx_dataplane_dropped_packets_total") || has(base, "espx_sa_packets_total") || has(base, "espx_xdp_received_packets_total") {
		t.Errorf("default descriptions: %v", base)
	}
	all := descs(Options{PerSA: true, Sockets: []Socket{{Stats: &fakeSocket{}}}})
	if !has(all, "espx_sa_packets_total") || !has(all, "espx_xdp_received_packets_total") {
		t.Errorf("descriptions with PerSA and sockets: %v", all)
	}
}
