package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of the /metrics server. A scrape is small and local; these only
// keep a stuck client from holding a connection for ever.
const (
	readHeaderTimeout = 10 * time.Second
	writeTimeout      = 30 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// Handler returns the /metrics handler for a new registry holding cs and
// the Go runtime and process collectors, as promhttp.Handler does for the
// default registry. It fails if the collectors clash.
func Handler(cs ...prometheus.Collector) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	cs = append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, cs...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register collector: %w", err)
		}
	}
	// ContinueOnError: a scrape that goes wrong in one collector still
	// serves the others, and promhttp counts the error.
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError})
	return promhttp.InstrumentMetricHandler(reg, h), nil
}

// Serve serves /metrics for cs, with the Go and process collectors, over
// HTTP on addr until ctx is done, then shuts the server down and returns
// nil. It returns an error if addr cannot be listened on or serving fails.
func Serve(ctx context.Context, addr string, cs ...prometheus.Collector) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // done before it started
		}
		return fmt.Errorf("metrics: %w", err)
	}
	return ServeListener(ctx, ln, cs...)
}

// ServeListener is Serve on a listener the caller opened, for example on
// port 0 to learn the port. It closes ln.
func ServeListener(ctx context.Context, ln net.Listener, cs ...prometheus.Collector) error {
	h, err := Handler(cs...)
	if err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics: serve %v: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	// ctx is done, so shutting down needs a context of its own.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve %v: %w", ln.Addr(), err)
	}
	return nil
}
