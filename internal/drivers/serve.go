package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/schollz/progressbar/v3"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/streamscore/streamscore/internal/config"
)

// ServeMetrics serves /metrics and /healthz on o.Address until ctx ends, and the Go
// profiler (/debug/pprof/) only when o.PProf asks for it: a profile exposes the command
// line and the code paths, and a CPU profile or trace costs CPU on demand, so it is off
// unless an operator turns it on. It returns the address actually bound (useful with port
// 0); an empty address serves nothing. The server runs on goroutines of its own, shut down
// when ctx ends.
func ServeMetrics(ctx context.Context, o config.MetricsOptions, reg *prometheus.Registry, log *zap.Logger) (string, error) {
	if o.Address == "" {
		return "", nil
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if o.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", o.Address)
	if err != nil {
		return "", fmt.Errorf("metrics address %s: %w", o.Address, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", zap.Error(err))
		}
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shut) // best effort: the process is exiting
	}()
	return ln.Addr().String(), nil
}

// newBar is a progress bar on w when w is a terminal, else nil.
func newBar(w io.Writer, total int) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(int64(total),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("scoring"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("events"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// runWithBar runs fn while a progress bar (on a terminal) follows done() towards total.
func runWithBar(out io.Writer, total int64, done func() int64, fn func() error) error {
	bar := newBar(out, int(total))
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if bar != nil {
				_ = bar.Set64(done())
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	err := fn()
	close(stop)
	<-finished
	if bar != nil {
		_ = bar.Finish()
	}
	return err
}
