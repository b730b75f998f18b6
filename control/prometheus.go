package control

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The control plane's Prometheus series, read at scrape time from the
// daemon's Stats and IKE SA table, beside the data plane's
// (dataplane/metrics), with the same conventions:
//
//	espx_ike_sas{state}                        gauge: IKE SAs by state
//	espx_ike_child_sas                         gauge: child SAs of those IKE SAs
//	espx_ike_sas_established_total             IKE SAs established, either role
//	espx_ike_sas_failed_total                  negotiations that failed
//	espx_ike_sa_rekeys_total                   IKE SA rekeys, by either end
//	espx_ike_sa_rekey_collisions_total         simultaneous IKE SA rekeys
//	espx_ike_child_sas_installed_total         child SAs installed, new and rekeyed
//	espx_ike_dead_peers_total                  IKE SAs closed because the peer stopped answering
//	espx_ike_messages_dropped_total{reason}    messages dropped, by reason
//	espx_ike_refusals_sent_total{notify}       refusals sent, by notify type
//	espx_ike_retransmits_total                 our requests sent again
//	espx_ike_responses_resent_total            answers resent for retransmitted requests
//	espx_ike_half_open_expired_total           responder IKE SAs that never completed
//	espx_ike_nat_keepalives_sent_total
//
// Listing the IKE SAs locks each in turn, as espxctl ike does.

var (
	ikeSAsDesc = prometheus.NewDesc("espx_ike_sas",
		"IKE SAs by state.", []string{"state"}, nil)
	childSAsDesc = prometheus.NewDesc("espx_ike_child_sas",
		"Child SAs of the IKE SAs.", nil, nil)
	droppedDesc = prometheus.NewDesc("espx_ike_messages_dropped_total",
		"IKE messages dropped, by reason.", []string{"reason"}, nil)
	refusalsDesc = prometheus.NewDesc("espx_ike_refusals_sent_total",
		"Requests refused with an error notify, by notify type, and IKE_SA_INIT requests answered with a cookie.", []string{"notify"}, nil)
)

// ikeCounter is a plain counter series of Stats.
type ikeCounter struct {
	desc *prometheus.Desc
	v    func(*Stats) *atomic.Uint64
}

var ikeCounters = []ikeCounter{
	{prometheus.NewDesc("espx_ike_sas_established_total", "IKE SAs established by IKE_AUTH, either role.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.Established }},
	{prometheus.NewDesc("espx_ike_sas_failed_total", "IKE SAs that failed before they were established.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.Failed }},
	{prometheus.NewDesc("espx_ike_sa_rekeys_total", "IKE SAs replaced by a rekey, by either end.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.IKERekeys }},
	{prometheus.NewDesc("espx_ike_sa_rekey_collisions_total", "IKE SA rekeys both ends started at once.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.IKERekeyCollisions }},
	{prometheus.NewDesc("espx_ike_child_sas_installed_total", "Child SAs installed, new and rekeyed.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.ChildSAs }},
	{prometheus.NewDesc("espx_ike_dead_peers_total", "Established IKE SAs closed because the peer stopped answering.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.DeadPeers }},
	{prometheus.NewDesc("espx_ike_retransmits_total", "Our IKE requests sent again.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.Retransmits }},
	{prometheus.NewDesc("espx_ike_responses_resent_total", "Answers resent for retransmitted requests.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.Retransmitted }},
	{prometheus.NewDesc("espx_ike_half_open_expired_total", "Responder IKE SAs that never completed.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.HalfOpenExpired }},
	{prometheus.NewDesc("espx_ike_nat_keepalives_sent_total", "NAT keepalives sent.", nil, nil), func(s *Stats) *atomic.Uint64 { return &s.Keepalives }},
}

// dropReasons name the Stats of dropped messages.
var dropReasons = []struct {
	name string
	v    func(*Stats) *atomic.Uint64
}{
	{"malformed", func(s *Stats) *atomic.Uint64 { return &s.Malformed }},
	{"unknown_sa", func(s *Stats) *atomic.Uint64 { return &s.UnknownSA }},
	{"auth_failed", func(s *Stats) *atomic.Uint64 { return &s.AuthFailed }},
	{"out_of_order", func(s *Stats) *atomic.Uint64 { return &s.OutOfOrder }},
	{"no_peer_config", func(s *Stats) *atomic.Uint64 { return &s.NoPeerConfig }},
	{"not_ike", func(s *Stats) *atomic.Uint64 { return &s.NotIKE }},
	{"init_limit", func(s *Stats) *atomic.Uint64 { return &s.InitDropped }},
	{"bad_cookie", func(s *Stats) *atomic.Uint64 { return &s.BadCookie }},
}

// refusals name the Stats of refusals sent.
var refusals = []struct {
	name string
	v    func(*Stats) *atomic.Uint64
}{
	{"NO_PROPOSAL_CHOSEN", func(s *Stats) *atomic.Uint64 { return &s.NoProposal }},
	{"INVALID_KE_PAYLOAD", func(s *Stats) *atomic.Uint64 { return &s.InvalidKE }},
	{"TS_UNACCEPTABLE", func(s *Stats) *atomic.Uint64 { return &s.TSUnacceptable }},
	{"COOKIE", func(s *Stats) *atomic.Uint64 { return &s.CookiesSent }},
}

// collector is the daemon's prometheus.Collector.
type collector struct {
	d  *Daemon
	tr *UDPTransport
}

// Collector returns a Prometheus collector of the daemon's series; tr, if
// not nil, adds its handler-queue overflows to the dropped messages
// (reason "overflow").
func (d *Daemon) Collector(tr *UDPTransport) prometheus.Collector { return &collector{d, tr} }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ikeSAsDesc
	ch <- childSAsDesc
	ch <- droppedDesc
	ch <- refusalsDesc
	for _, k := range ikeCounters {
		ch <- k.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	states := map[string]int{}
	for _, s := range []saState{stateInitSent, stateInitDone, stateAuthSent, stateEstablished} {
		states[s.String()] = 0
	}
	children := 0
	for _, i := range c.d.List() {
		states[i.State]++
		children += len(i.Children)
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(ikeSAsDesc, prometheus.GaugeValue, float64(n), strings.ToLower(s))
	}
	ch <- prometheus.MustNewConstMetric(childSAsDesc, prometheus.GaugeValue, float64(children))
	st := &c.d.Stats
	for _, k := range ikeCounters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.v(st).Load()))
	}
	for _, r := range dropReasons {
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(r.v(st).Load()), r.name)
	}
	if c.tr != nil {
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(c.tr.Overflows.Load()), "overflow")
	}
	for _, r := range refusals {
		ch <- prometheus.MustNewConstMetric(refusalsDesc, prometheus.CounterValue, float64(r.v(st).Load()), r.name)
	}
}
