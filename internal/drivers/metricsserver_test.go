//go:build !integration

package drivers

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
)

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec,noctx // a test URL on loopback
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestPProfOnlyWhenAsked: the profiler is 404 by default and served with metrics.pprof;
// /metrics and /healthz are served either way.
func TestPProfOnlyWhenAsked(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		ms, err := NewMetricsServer(config.MetricsOptions{Address: "127.0.0.1:0", PProf: pprof}, prometheus.NewRegistry(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- ms.Run(ctx) }()
		base := "http://" + ms.Addr()
		want := http.StatusNotFound
		if pprof {
			want = http.StatusOK
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
			if got := get(t, base+path); got != want {
				t.Errorf("pprof %v: %s answered %d, want %d", pprof, path, got, want)
			}
		}
		for _, path := range []string{"/metrics", "/healthz"} {
			if got := get(t, base+path); got != http.StatusOK {
				t.Errorf("pprof %v: %s answered %d", pprof, path, got)
			}
		}
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("pprof %v: Run: %v", pprof, err)
		}
	}
}

// TestMetricsServerRunWaits: Run returns only once the server has stopped (goleak in
// TestMain catches a goroutine left behind), and an empty address serves nothing.
func TestMetricsServerRunWaits(t *testing.T) {
	ms, err := NewMetricsServer(config.MetricsOptions{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if ms.Addr() != "" {
		t.Errorf("empty address bound %s", ms.Addr())
	}
	ms, err = NewMetricsServer(config.MetricsOptions{Address: "127.0.0.1:0"}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	// fn runs on a goroutine of ServeWhile: it returns its failure instead of t.Fatal.
	status := 0
	err = ms.ServeWhile(context.Background(), func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ms.Addr()+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		status = resp.StatusCode
		return resp.Body.Close()
	})
	if err != nil || status != http.StatusOK {
		t.Fatalf("ServeWhile: %v, /healthz answered %d", err, status)
	}
}
