package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

type demoOptions struct {
	events      int
	badFraction float64
	rate        float64
	seed        uint64
	jsonOut     bool
	timeout     time.Duration
}

// demoSummary is the demo's result; with --json it is the last line of output.
type demoSummary struct {
	Events          int64   `json:"events"`
	Predictions     int64   `json:"predictions"`
	Alerts          int64   `json:"alerts"`
	DeadLettered    int64   `json:"dead_lettered"`
	BadInjected     int64   `json:"bad_injected"`
	Duplicates      int64   `json:"duplicates"`
	Uncommitted     int64   `json:"uncommitted"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	LatencyP50Ms    float64 `json:"latency_p50_ms"`
	LatencyP99Ms    float64 `json:"latency_p99_ms"`
	Batches         int64   `json:"batches"`
	MeanBatch       float64 `json:"mean_batch_size"`
	Model           string  `json:"model"`
	ModelVersion    string  `json:"model_version"`
}

func newDemoCmd(g *globalFlags) *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Score simulated transactions end to end on an embedded Kafka broker",
		Long: `demo starts an in-process Kafka-protocol broker, creates the topics, and runs the
live scoring job (the same code as 'run') while it produces N simulated transactions. It
reads back the predictions, alerts and dead letters, and ends with a summary: events,
predictions, alerts, dead-lettered, throughput and event-to-prediction latency.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if g.logLevel == "" {
				c.Log.Level = "warn"
			}
			c.Log.Format = "console"
			c.Metrics.Address = "" // no port to clash with
			s, err := runDemo(cmd.Context(), c, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.jsonOut {
				b, err := json.Marshal(s)
				if err != nil {
					return err
				}
				fmt.Fprintln(out, string(b))
			} else {
				printSummary(out, s)
			}
			if s.Predictions+s.DeadLettered != s.Events {
				return fmt.Errorf("%d events but %d predictions + %d dead letters", s.Events, s.Predictions, s.DeadLettered)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.events, "events", 20000, "events to produce")
	fl.Float64Var(&o.badFraction, "bad-fraction", 0.01, "fraction of malformed events")
	fl.Float64Var(&o.rate, "rate", 0, "events per second (0: as fast as possible)")
	fl.Uint64Var(&o.seed, "seed", 1, "simulator seed")
	fl.BoolVar(&o.jsonOut, "json", false, "print the summary as one JSON object (the last line)")
	fl.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up when outputs stop arriving for this long")
	return cmd
}

func runDemo(ctx context.Context, c *config.Config, o demoOptions, progressOut io.Writer) (*demoSummary, error) {
	broker, err := topics.NewEmbeddedBroker(3, append(append([]string{}, c.Topics.Input...),
		c.Topics.Labels, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)...)
	if err != nil {
		return nil, err
	}
	defer broker.Close()
	c.Kafka.Brokers = broker.Addrs()
	c.Kafka.TLS, c.Kafka.SASL = topics.TLSConfig{}, topics.SASLConfig{}
	c.Group = "streamscore-demo"
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		return nil, err
	}
	log, err := c.Log.NewLogger()
	if err != nil {
		return nil, err
	}
	defer func() { _ = log.Sync() }()

	reg := prometheus.NewRegistry()
	stats := &pipeline.Stats{}
	l, err := buildLive(ctx, cc, reg, log, stats)
	if err != nil {
		return nil, err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- l.run(runCtx) }()

	// Read back every output topic from the start, as a subscriber would.
	audit := newOutputAudit(c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	reader, err := topics.NewReader(c.Kafka, true, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	readDone := make(chan error, 1)
	go func() { readDone <- audit.consume(readCtx, reader) }()

	prod, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	start := time.Now()
	var produced atomic.Int64
	prodRes := make(chan sim.ProduceResult, 1)
	prodErr := make(chan error, 1)
	go func() {
		r, err := sim.Produce(ctx, prod, sim.ProduceOptions{
			Events: o.events, Rate: o.rate, Seed: o.seed, BadFraction: o.badFraction,
			Topic: c.Topics.Input[0], Labels: c.Topics.Labels,
		}, &produced)
		prodErr <- err
		prodRes <- r
	}()

	bar := newBar(progressOut, o.events)
	var res sim.ProduceResult
	producing := true
	lastProgress, lastDone := time.Now(), int64(-1)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done := audit.scored()
		if bar != nil {
			_ = bar.Set64(done)
		}
		if done != lastDone {
			lastDone, lastProgress = done, time.Now()
		}
		if !producing && done >= res.Events {
			break
		}
		if time.Since(lastProgress) > o.timeout {
			return nil, fmt.Errorf("no output for %v: %d of %d events have an output", o.timeout, done, o.events)
		}
		select {
		case err := <-prodErr:
			if err != nil {
				return nil, err
			}
			res = <-prodRes
			producing = false
		case err := <-runErr:
			return nil, fmt.Errorf("scoring stopped early: %v", err)
		case err := <-readDone:
			return nil, fmt.Errorf("reading outputs: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	elapsed := time.Since(start)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(progressOut)
	}
	// Graceful stop: drain, commit, leave the group; then check what was committed.
	stopRun()
	if err := <-runErr; err != nil {
		return nil, fmt.Errorf("stopping the scoring job: %w", err)
	}
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	behind, err := adm.Behind(ctx, c.Group, c.Topics.Input...)
	if err != nil {
		return nil, err
	}
	stopRead()
	<-readDone

	q := stats.Latency.Quantiles(0.5, 0.99)
	s := &demoSummary{
		Events: res.Events, BadInjected: res.Bad, Uncommitted: behind,
		Seconds: elapsed.Seconds(), EventsPerSecond: float64(res.Events) / elapsed.Seconds(),
		LatencyP50Ms: float64(q[0]) / 1e6, LatencyP99Ms: float64(q[1]) / 1e6,
		Batches: stats.Batches.Load(), Model: l.model.Name(), ModelVersion: l.model.Version(),
	}
	audit.fill(s)
	if s.Batches > 0 {
		s.MeanBatch = float64(stats.Rows.Load()) / float64(s.Batches)
	}
	return s, nil
}

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

func printSummary(w io.Writer, s *demoSummary) {
	fmt.Fprintf(w, "events          %d (%d malformed injected)\n", s.Events, s.BadInjected)
	fmt.Fprintf(w, "predictions     %d\n", s.Predictions)
	fmt.Fprintf(w, "fraud alerts    %d\n", s.Alerts)
	fmt.Fprintf(w, "dead-lettered   %d\n", s.DeadLettered)
	fmt.Fprintf(w, "duplicates      %d, uncommitted %d\n", s.Duplicates, s.Uncommitted)
	fmt.Fprintf(w, "throughput      %.0f events/s over %.2fs\n", s.EventsPerSecond, s.Seconds)
	fmt.Fprintf(w, "latency         p50 %.2f ms, p99 %.2f ms (event to acknowledged prediction)\n", s.LatencyP50Ms, s.LatencyP99Ms)
	fmt.Fprintf(w, "batches         %d, mean size %.1f\n", s.Batches, s.MeanBatch)
	fmt.Fprintf(w, "model           %s %s\n", s.Model, s.ModelVersion)
}

// outputAudit counts outputs per input offset, as read back from the output topics.
type outputAudit struct {
	preds, alerts, dlq string
	mu                 sync.Mutex
	seenPred           map[srcKey]int
	seenDLQ            map[srcKey]int
	dlqClass           map[srcKey]string
	alertN             int64
	dups               int64
	decodeErrs         int64
}

type srcKey struct {
	topic     string
	partition int32
	offset    int64
}

func newOutputAudit(preds, alerts, dlq string) *outputAudit {
	return &outputAudit{preds: preds, alerts: alerts, dlq: dlq, seenPred: map[srcKey]int{}, seenDLQ: map[srcKey]int{}, dlqClass: map[srcKey]string{}}
}

func (a *outputAudit) consume(ctx context.Context, r *topics.Reader) error {
	for {
		recs, err := r.Fetch(ctx)
		a.add(recs)
		if ctx.Err() != nil || errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (a *outputAudit) add(recs []pipeline.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range recs {
		switch r.Topic {
		case a.preds:
			var p pipeline.Prediction
			if err := json.Unmarshal(r.Value, &p); err != nil {
				a.decodeErrs++
				continue
			}
			k := srcKey{p.Source.Topic, p.Source.Partition, p.Source.Offset}
			a.seenPred[k]++
			if a.seenPred[k] > 1 {
				a.dups++
			}
		case a.alerts:
			a.alertN++
		case a.dlq:
			k := srcKey{partition: -1, offset: -1}
			var class string
			for _, h := range r.Headers {
				switch h.Key {
				case "source.topic":
					k.topic = string(h.Value)
				case "source.partition":
					if p, err := strconv.ParseInt(string(h.Value), 10, 32); err == nil {
						k.partition = int32(p)
					}
				case "source.offset":
					if o, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
						k.offset = o
					}
				case "error.class":
					class = string(h.Value)
				}
			}
			a.dlqClass[k] = class
			a.seenDLQ[k]++
			if a.seenDLQ[k] > 1 {
				a.dups++
			}
		}
	}
}

// scored is the number of distinct input records with a prediction or a dead letter.
func (a *outputAudit) scored() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.seenPred) + len(a.seenDLQ))
}

func (a *outputAudit) fill(s *demoSummary) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s.Predictions = int64(len(a.seenPred))
	s.DeadLettered = int64(len(a.seenDLQ))
	s.Alerts = a.alertN
	s.Duplicates = a.dups
}
