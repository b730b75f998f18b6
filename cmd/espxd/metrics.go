package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/dataplane/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// startMetrics serves /metrics for Prometheus on the configured address:
// the workers' counters by core, the SAs (per SA if configured, capped),
// each AF_XDP socket's statistics, and with IKE the control plane's
// series (espx_ike_*).
func startMetrics(ctx context.Context, cfg *config, dp *dataplane.Dataplane, gw *dataplane.Gateway, k *ike, log *slog.Logger) error {
	opts := metrics.Options{PerSA: cfg.file.Metrics.PerSA > 0, MaxSAs: cfg.file.Metrics.PerSA}
	for core, socks := range gw.Sockets() {
		for side, s := range socks {
			opts.Sockets = append(opts.Sockets, metrics.Socket{Core: core, Side: side, Stats: s})
		}
	}
	ln, err := net.Listen("tcp", cfg.file.Metrics.Listen)
	if err != nil {
		return err
	}
	log.Info("metrics", "listen", ln.Addr().String())
	go func() {
		cs := []prometheus.Collector{metrics.New(dp, opts)}
		if k != nil {
			cs = append(cs, k.d.Collector(k.udp))
		}
		if err := metrics.ServeListener(ctx, ln, cs...); err != nil {
			log.Error("metrics", "err", err)
		}
	}()
	return nil
}
