package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/config"
)

// Command is the main function of cmd/streamscore-bench, kept here so that the command is
// a line (issue 22 caps cmd's size): SIGINT and SIGTERM cancel Main's context, so that the
// bench stops its child processes before it exits; an error exits 1.
func Command() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Main(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamscore-bench:", err)
		os.Exit(1)
	}
}

// Main is the streamscore-bench command: it parses args (without the program's name) and
// measures, or replots, writing the table to stdout. Cancelling ctx stops it between steps.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	cmd := newCommand(func(o *options) error { return o.execute(ctx, stdout) })
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	return cmd.ExecuteContext(ctx)
}

// options are the command's flags.
type options struct {
	config, brokers, logLevel string
	bin, out, replot          string
	events, repeats, warmup   int
	seconds                   float64
	only                      []string
	rates                     []float64
	profile                   string
	features, cheapModel      string
	scalePartitions           []int
	scaleEvents               []int
}

// newCommand is the cobra command of Main; run gets the parsed flags (a test's seam).
func newCommand(run func(*options) error) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "streamscore-bench",
		Short: "Measure the Kafka ceiling, the scoring ceiling, catch-up, latency under load, backfill and peak RSS",
		Long: `streamscore-bench runs against a real broker (make bench starts one) and prints a table:
(a) the Kafka ceiling: a minimal franz-go consume->produce copy of the same topic;
(b) the scoring ceiling: ONNX Runtime alone on pre-built batches of 1 to 4096 rows;
(c) catch-up: N pre-produced events scored from offset zero by a streamscore process, with
    its CPU time per event and peak RSS, and, from CPU profiles taken over it, the CPU per
    event split into ONNX Runtime and everything else;
(d) latency under offered load: events produced at fixed rates and the predictions read
    back by a subscriber: event-to-prediction p50, p99, p99.9. Each load runs --repeats
    times, alternating the Kafka floor (a relay) and streamscore; the table gives the
    median of (streamscore - floor) over the repeats with its min..max, and each stage's
    p99 (median over the repeats) from the pipeline's own histograms. --warmup-rounds
    rounds of the first load run before and are discarded (a new broker is slow), and
    each probe's topics are deleted when it ends;
(e) backfill throughput (a streamscore backfill process);
(f) catch-up as (c) with delivery: exactly-once;
(g) a cascade (--cheap-model scores every row, the rows at or above a gate passing about
    5% go to the config's model, whose score replaces the cheap one) against that model
    alone: CPU per event, and AUC, AP and card precision@100 on the handbook's test period
    of --features; and the ratios;
(s) scale, only when named in --only: catch-up at each of --scale-partitions input
    partitions and --scale-events sizes: rate, CPU per event, peak RSS and the state's
    entity gauges.
Results go to OUT/results.json and OUT/latency.png. Stages c, d, e, f and s run the
streamscore binary named by --bin.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          func(*cobra.Command, []string) error { return run(o) },
	}
	fl := cmd.Flags()
	fl.StringVar(&o.config, "config", "", "YAML config file (default: ./streamscore.yaml when present)")
	fl.StringVar(&o.brokers, "brokers", "", "Kafka brokers host:port,... (overrides config and STREAMSCORE_BROKERS)")
	fl.StringVar(&o.logLevel, "log-level", "", "log level of the streamscore child processes (default error)")
	fl.StringVar(&o.bin, "bin", "bin/streamscore", "the streamscore binary that stages c, d, e, f and s run")
	fl.IntVar(&o.events, "events", 1_000_000, "pre-produced events for the ceiling, catch-up and backfill runs")
	fl.StringVar(&o.out, "out", "bin/bench", "folder for results.json and latency.png")
	fl.Float64Var(&o.seconds, "seconds", 2, "duration of each offered-load run of (d)")
	fl.IntVar(&o.repeats, "repeats", DefaultRepeats, "runs of each offered load of (d), each of the floor and of streamscore")
	fl.IntVar(&o.warmup, "warmup-rounds", 1, "rounds of (d)'s first offered load run first and discarded (a freshly started broker is slow)")
	fl.StringVar(&o.replot, "replot", "", "measure nothing: print the table of DIR/results.json and redraw DIR/latency.png")
	fl.StringSliceVar(&o.only, "only", nil, "run only these stages (a,b,c,d,e,f,g,s); default all but s")
	fl.Float64SliceVar(&o.rates, "rates", nil, "offered loads for (d), events/s (default 1000,10000,50000 and 80% of the catch-up rate)")
	fl.StringVar(&o.features, "features", "bin/bench/features.csv", "stage g's features CSV (streamscore features --days 136); written by --bin when missing")
	fl.StringVar(&o.cheapModel, "cheap-model", "testdata/model/fraud-small.onnx", "stage g: the cascade's first, cheap model")
	fl.StringVar(&o.profile, "pprof", "", "host:port: serve /metrics and /debug/pprof/ of the catch-up children (c, f) there (default for c: a free port); the bench itself takes the CPU profiles of c, so profile f by hand (curl ADDR/debug/pprof/profile?seconds=5)")
	fl.IntSliceVar(&o.scalePartitions, "scale-partitions", []int{1, 3, 6}, "stage s: input partition counts")
	fl.IntSliceVar(&o.scaleEvents, "scale-events", []int{1_000_000, 5_000_000}, "stage s: catch-up sizes, events")
	return cmd
}

// plan turns the flags into what Run measures; its errors name the flag to fix.
func (o *options) plan() (Plan, error) {
	stages, err := ParseStages(o.only)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{
		Events: o.events, Step: time.Duration(o.seconds * float64(time.Second)), Repeats: o.repeats, WarmupRounds: o.warmup,
		Stages: stages, Rates: o.rates, Binary: o.bin, ChildLogLevel: o.logLevel, Profile: o.profile,
		Features: o.features, CheapModel: o.cheapModel,
		Scale: ScalePlan{Partitions: o.scalePartitions, Events: o.scaleEvents},
	}
	if o.repeats < 1 { // the Plan's 0 means its default; the flag's is a mistake
		return p, fmt.Errorf("--repeats %d: want at least 1 (%d for a median that one noisy run cannot move)", o.repeats, DefaultRepeats)
	}
	return p, p.validate()
}

// execute measures the plan of o (or replots) and prints the table to w.
func (o *options) execute(ctx context.Context, w io.Writer) error {
	if o.replot != "" {
		return Replot(w, o.replot)
	}
	plan, err := o.plan()
	if err != nil {
		return err
	}
	c, err := o.loadConfig()
	if err != nil {
		return err
	}
	return Measure(ctx, c, plan, o.out, w)
}

// loadConfig reads the config the flags point at, as streamscore does. The children get
// --log-level on their command line, which wins over the config's level.
func (o *options) loadConfig() (*config.Config, error) {
	c, err := config.LoadCommandLine(config.CommandLine{Path: o.config, Brokers: o.brokers})
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	c.Log.Level = "warn"
	return c, nil
}
