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
		ctx, cancel := context.WithCancel(context.Background())
		addr, err := ServeMetrics(ctx, config.MetricsOptions{Address: "127.0.0.1:0", PProf: pprof}, prometheus.NewRegistry(), zap.NewNop())
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		base := "http://" + addr
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
	}
}
