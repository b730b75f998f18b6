package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
)

// get fetches url and returns the status and body.
func get(tb testing.TB, url string) (int, string) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServeListener scrapes /metrics over HTTP, then checks that the
// server stops when its context is done.
func TestServeListener(t *testing.T) {
	a, _ := newPair(t)
	a.prot.Queue(t, udpFrame(hostA, hostB, 10))
	a.poll()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, New(a.dp, Options{})) }()

	base := "http://" + ln.Addr().String()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`espx_dataplane_encrypted_packets_total{core="0"} 1`,
		`espx_dataplane_dropped_packets_total{core="0",reason="replay"} 0`,
		"# TYPE espx_dataplane_received_bytes_total counter",
		"go_goroutines ",
		"process_open_fds ",
		"promhttp_metric_handler_requests_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := get(t, base+"/"); code != http.StatusNotFound {
		t.Errorf("GET /: %d, want 404", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeListener after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeListener did not return after cancel")
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Error("still serving after cancel")
	}
}

// TestServe runs Serve on an address until cancelled, and on one it cannot
// listen on.
func TestServe(t *testing.T) {
	a, _ := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", New(a.dp, Options{})) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}

	if err := Serve(context.Background(), "127.0.0.1:-1", New(a.dp, Options{})); err == nil {
		t.Error("Serve on a bad address: no error")
	}
}

// TestHandlerClash checks that a collector clashing with the built-in ones
// is refused rather than served half.
func TestHandlerClash(t *testing.T) {
	if _, err := Handler(collectors.NewGoCollector()); err == nil {
		t.Error("Handler took a second Go collector")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ServeListener(context.Background(), ln, collectors.NewGoCollector()); err == nil {
		t.Error("ServeListener took a second Go collector")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener left open after a failed ServeListener")
	}
}
