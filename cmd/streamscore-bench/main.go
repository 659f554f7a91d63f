// Command streamscore-bench measures streamscore on a real broker: the Kafka ceiling, the
// scoring ceiling, catch-up, latency under offered load, backfill and peak RSS (make bench
// runs it). It is a command of its own so that the production binary, which it runs as a
// child process (--bin), links neither the harness nor the plotting library. This file
// only parses flags; the harness is internal/bench.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/bench"
	"github.com/streamscore/streamscore/internal/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "streamscore-bench:", err)
		os.Exit(1)
	}
}

// run turns SIGINT and SIGTERM into a canceled context and runs the command; it returns
// before main exits, so the signal handler is always released.
func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return newCmd().ExecuteContext(ctx)
}

type flags struct {
	config, brokers, logLevel string
	bin, out, replot          string
	events                    int
	seconds                   float64
	only                      []string
	rates                     []float64
	profile                   string
	features, cheapModel      string
}

func newCmd() *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "streamscore-bench",
		Short: "Measure the Kafka ceiling, the scoring ceiling, catch-up, latency under load, backfill and peak RSS",
		Long: `streamscore-bench runs against a real broker (make bench starts one) and prints a table:
(a) the Kafka ceiling: a minimal franz-go consume->produce copy of the same topic;
(b) the scoring ceiling: ONNX Runtime alone on pre-built batches of 1 to 4096 rows;
(c) catch-up: N pre-produced events scored from offset zero by a streamscore process, with
    its CPU time per event and peak RSS;
(d) latency under offered load: events produced at fixed rates and the predictions read
    back by a subscriber: event-to-prediction p50, p99, p99.9;
(e) backfill throughput (a streamscore backfill process);
(f) catch-up as (c) with delivery: exactly-once;
(g) a cascade (--cheap-model scores every row, the rows at or above a gate passing about
    5% go to the config's model, whose score replaces the cheap one) against that model
    alone: CPU per event, and AUC, AP and card precision@100 on the handbook's test period
    of --features; and the ratios.
Results go to OUT/results.json and OUT/latency.png. Stages c, d, e and f run the streamscore
binary named by --bin.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.replot != "" {
				return bench.Replot(cmd.OutOrStdout(), f.replot)
			}
			return measure(cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML config file (default: ./streamscore.yaml when present)")
	fl.StringVar(&f.brokers, "brokers", "", "Kafka brokers host:port,... (overrides config and STREAMSCORE_BROKERS)")
	fl.StringVar(&f.logLevel, "log-level", "", "log level of the streamscore child processes (default error)")
	fl.StringVar(&f.bin, "bin", "bin/streamscore", "the streamscore binary that stages c, d and e run")
	fl.IntVar(&f.events, "events", 1_000_000, "pre-produced events for the ceiling, catch-up and backfill runs")
	fl.StringVar(&f.out, "out", "bin/bench", "folder for results.json and latency.png")
	fl.Float64Var(&f.seconds, "seconds", 4, "duration of each offered-load step")
	fl.StringVar(&f.replot, "replot", "", "measure nothing: print the table of DIR/results.json and redraw DIR/latency.png")
	fl.StringSliceVar(&f.only, "only", nil, "run only these stages (a,b,c,d,e,f,g); default all")
	fl.Float64SliceVar(&f.rates, "rates", nil, "offered loads for (d), events/s (default 1000,10000,50000 and 80% of the catch-up rate)")
	fl.StringVar(&f.features, "features", "bin/bench/features.csv", "stage g's features CSV (streamscore features --days 136); written by --bin when missing")
	fl.StringVar(&f.cheapModel, "cheap-model", "testdata/model/fraud-small.onnx", "stage g: the cascade's first, cheap model")
	fl.StringVar(&f.profile, "pprof", "", "host:port: serve /metrics and /debug/pprof/ of the catch-up children (c, f) there, to profile them (curl ADDR/debug/pprof/profile?seconds=5)")
	return cmd
}

func measure(cmd *cobra.Command, f *flags) error {
	stages, err := bench.ParseStages(f.only)
	if err != nil {
		return err
	}
	c, err := loadConfig(f)
	if err != nil {
		return err
	}
	plan := bench.Plan{
		Events: f.events, Step: time.Duration(f.seconds * float64(time.Second)), Stages: stages, Rates: f.rates,
		Binary: f.bin, ChildLogLevel: f.logLevel, Profile: f.profile, Features: f.features, CheapModel: f.cheapModel,
	}
	return bench.Measure(cmd.Context(), c, plan, f.out, cmd.OutOrStdout())
}

// loadConfig reads the config the flags point at, as streamscore does. The children get
// --log-level on their command line, which wins over the config's level.
func loadConfig(f *flags) (*config.Config, error) {
	c, err := config.LoadCommandLine(config.CommandLine{Path: f.config, Brokers: f.brokers})
	if err != nil {
		return nil, err
	}
	c.Log.Level = "warn"
	return c, nil
}
