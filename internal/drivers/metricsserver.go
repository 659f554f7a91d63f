package drivers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/streamscore/streamscore/internal/config"
)

// MetricsServer serves /metrics and /healthz, and the Go profiler (/debug/pprof/) only
// when asked for it: a profile exposes the command line and the code paths, and a CPU
// profile or trace costs CPU on demand, so it is off unless an operator turns it on.
//
// NewMetricsServer binds the address; Run serves until ctx ends and returns only once
// the server's goroutines have stopped. A server that is never run must be closed.
type MetricsServer struct {
	srv *http.Server // nil: no address, nothing served
	ln  net.Listener
	log *zap.Logger
}

// NewMetricsServer binds o.Address (port 0 picks one: see Addr) and registers the Go
// and process collectors on reg. An empty address serves nothing: Run returns at once.
func NewMetricsServer(o config.MetricsOptions, reg *prometheus.Registry, log *zap.Logger) (*MetricsServer, error) {
	if o.Address == "" {
		return &MetricsServer{log: log}, nil
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
		return nil, fmt.Errorf("metrics address %s: %w", o.Address, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return &MetricsServer{srv: srv, ln: ln, log: log}, nil
}

// Addr is the address actually bound (useful with port 0); empty when nothing is served.
func (m *MetricsServer) Addr() string {
	if m.srv == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Run serves until ctx ends, then shuts the server down (waiting up to a second for
// requests in flight) and returns once it has stopped. A server that stops by itself
// is logged and not an error: scoring goes on without metrics. Run may be called once.
func (m *MetricsServer) Run(ctx context.Context) error {
	if m.srv == nil {
		return nil
	}
	served := make(chan error, 1)
	go func() { served <- m.srv.Serve(m.ln) }()
	select {
	case err := <-served:
		m.log.Warn("metrics server stopped", zap.Error(err))
		return nil
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := m.srv.Shutdown(shut); err != nil {
		_ = m.srv.Close() // best effort: the process is exiting
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		m.log.Warn("metrics server stopped", zap.Error(err))
	}
	return nil
}

// ServeWhile runs the server while fn runs, and returns fn's error once both have
// stopped: the server stops when fn returns or ctx ends. fn gets a context that ends
// with ctx.
func (m *MetricsServer) ServeWhile(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.Run(gctx) })
	g.Go(func() error {
		defer stop()
		return fn(gctx)
	})
	return g.Wait()
}

// Close releases the address of a server that was never run.
func (m *MetricsServer) Close() error {
	if m.srv == nil {
		return nil
	}
	if err := m.ln.Close(); err != nil {
		return fmt.Errorf("closing the metrics listener: %w", err)
	}
	return nil
}
