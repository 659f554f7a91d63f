// Command streamscore scores Kafka event streams with ONNX models: live (run), as a bounded
// replay (backfill), as a training-set export (export, features), and as a self-contained demo on
// an embedded broker (demo). This package only parses flags, loads the config and wires
// the drivers; the logic lives in pipeline, scorer and topics.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "streamscore:", err)
		os.Exit(1)
	}
}

// globalFlags are shared by every subcommand.
type globalFlags struct {
	config   string
	brokers  string
	logLevel string
}

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "streamscore",
		Short:         "Score Kafka event streams with ONNX models",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.config, "config", "", "YAML config file (default: ./streamscore.yaml when present)")
	root.PersistentFlags().StringVar(&g.brokers, "brokers", "", "Kafka brokers host:port,... (overrides config and STREAMSCORE_BROKERS)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error")
	root.AddCommand(newRunCmd(g), newProduceCmd(g), newTailCmd(g), newDemoCmd(g), newFeaturesCmd(g), newConfigCmd(g), newBackfillCmd(g), newExportCmd(g), newVerifyCmd(g))
	return root
}

// load reads the config the flags point at and applies flag overrides.
func (g *globalFlags) load() (*config.Config, error) {
	path := g.config
	if path == "" {
		if _, err := os.Stat("streamscore.yaml"); err == nil {
			path = "streamscore.yaml"
		}
	}
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if g.brokers != "" {
		c.Kafka.Brokers = config.SplitList(g.brokers)
	}
	if g.logLevel != "" {
		c.Log.Level = g.logLevel
	}
	return c, nil
}

// serveMetrics serves /metrics, /healthz and the Go profiler (/debug/pprof/) on addr until
// ctx ends. It returns the address
// actually bound (useful with port 0).
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *zap.Logger) (string, error) {
	if addr == "" {
		return "", nil
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %s: %w", addr, err)
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
