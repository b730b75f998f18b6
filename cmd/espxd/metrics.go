package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/dataplane/metrics"
)

// startMetrics serves /metrics for Prometheus on the configured address:
// the workers' counters by core, the SAs (per SA if configured, capped),
// and each AF_XDP socket's statistics.
func startMetrics(ctx context.Context, cfg *config, dp *dataplane.Dataplane, gw *dataplane.Gateway, log *slog.Logger) error {
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
		if err := metrics.ServeListener(ctx, ln, metrics.New(dp, opts)); err != nil {
			log.Error("metrics", "err", err)
		}
	}()
	return nil
}
