package control

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// series gathers c into "name{label=value,...}" -> value.
func series(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for i, l := range m.GetLabel() {
				sep := ","
				if i == 0 {
					sep = "{"
				}
				name += sep + l.GetName() + "=" + l.GetValue()
			}
			if len(m.GetLabel()) > 0 {
				name += "}"
			}
			out[name] = value(mf.GetType(), m)
		}
	}
	return out
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	if t == dto.MetricType_COUNTER {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// The IKE series follow what the daemons did: SAs by state, child SAs,
// establishments, installs across a rekey, and drops by reason.
func TestPrometheusCollector(t *testing.T) {
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	sa, err := p.a.Initiate("to-b")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	var spi uint32
	for s := range p.instA.sas {
		spi = s
	}
	if err := p.a.RekeyChild(spi); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rekey", func() bool {
		p.instA.mu.Lock()
		_, old := p.instA.sas[spi]
		p.instA.mu.Unlock()
		return !old && p.instA.count() == 2
	})
	p.net.settle()
	p.b.Receive([]byte("not IKE at all"), gwA, gwB)
	for name, c := range map[string]prometheus.Collector{"A": p.a.Collector(nil), "B": p.b.Collector(nil)} {
		got := series(t, c)
		for k, want := range map[string]float64{
			"espx_ike_sas{state=established}":                         1,
			"espx_ike_sas{state=init_sent}":                           0,
			"espx_ike_child_sas":                                      1,
			"espx_ike_sas_established_total":                          1,
			"espx_ike_sas_failed_total":                               0,
			"espx_ike_child_sas_installed_total":                      2,
			"espx_ike_refusals_sent_total{notify=NO_PROPOSAL_CHOSEN}": 0,
		} {
			if got[k] != want {
				t.Errorf("%s: %s = %v, want %v", name, k, got[k], want)
			}
		}
		wantMalformed := 0.0
		if name == "B" {
			wantMalformed = 1
		}
		if k := "espx_ike_messages_dropped_total{reason=malformed}"; got[k] != wantMalformed {
			t.Errorf("%s: %s = %v, want %v", name, k, got[k], wantMalformed)
		}
		problems, err := testutil.CollectAndLint(c)
		if err != nil || len(problems) > 0 {
			t.Errorf("%s: lint: %v %v", name, err, problems)
		}
	}
}
