package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	var group, model, device, metricsAddr, httpAddr string
	var threshold float64
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Score the input topics live in a consumer group",
		Long: `run joins the consumer group on the input topics and writes a prediction per event,
alerts and dead letters; offsets are committed only after a record's outputs are
acknowledged. SIGINT or SIGTERM drains, commits and exits 0. See docs/guarantees.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			given := func(name string, v *string) *string {
				if fl.Changed(name) {
					return v
				}
				return nil
			}
			f := config.RunFlags{Group: given("group", &group), ModelPath: given("model", &model), Device: given("device", &device),
				MetricsAddress: given("metrics-addr", &metricsAddr), HTTPAddress: given("http-addr", &httpAddr)}
			if fl.Changed("threshold") {
				f.Threshold = &threshold
			}
			c.ApplyRunFlags(f)
			// Live scoring only: batch jobs (backfill, export) read ahead in large fetches
			// and are faster left to the default GC pacing.
			if err := c.ApplyMemoryLimit(); err != nil {
				return err
			}
			cc, log, err := c.Prepare(config.Needs{Kafka: true, Model: true})
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			reg := prometheus.NewRegistry()
			ms, err := drivers.NewMetricsServer(cc.MetricsOptions(), reg, log)
			if err != nil {
				return err
			}
			return ms.ServeWhile(cmd.Context(), func(ctx context.Context) error {
				l, err := drivers.NewLive(ctx, cc, drivers.LiveDeps{Registry: reg, Logger: log})
				if err != nil {
					if ctx.Err() != nil { // SIGTERM during start-up: nothing fetched, nothing to drain
						log.Info("stopped during start-up", zap.Error(err))
						return nil
					}
					return err
				}
				log.Info("scoring", zap.Strings("input", c.Topics.Input), zap.String("group", c.Group),
					zap.String("model", l.Model().Name()), zap.String("version", l.Model().Version()),
					zap.String("device", string(l.Model().Device())), zap.String("metrics", ms.Addr()), zap.String("http", l.APIAddr()))
				err = l.Run(ctx)
				if err == nil {
					log.Info("stopped cleanly")
				}
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&group, "group", "", "consumer group id")
	fl.StringVar(&model, "model", "", "path of the .onnx model")
	fl.StringVar(&device, "device", "", "cpu or cuda")
	fl.Float64Var(&threshold, "threshold", 0, "alert threshold")
	fl.StringVar(&metricsAddr, "metrics-addr", "", "address of /metrics and /healthz, e.g. 127.0.0.1:7591 (default "+config.DefaultMetricsAddress+"; empty: off)")
	fl.StringVar(&httpAddr, "http-addr", "", "address of the scoring API (OIP v2, /v1/events), e.g. 127.0.0.1:8080 (empty: off)")
	return cmd
}
