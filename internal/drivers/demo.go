package drivers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// DemoOptions say what the demo produces.
type DemoOptions struct {
	Events      int
	BadFraction float64
	Rate        float64 // events/s; 0: as fast as possible
	Seed        uint64
	// Timeout: give up when outputs stop arriving for this long.
	Timeout time.Duration
}

// DemoSummary is the demo's result; with --json it is the last line of output.
type DemoSummary struct {
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
	// Alert is the first alert as a subscriber received it (reasons included).
	Alert json.RawMessage `json:"alert,omitempty"`
}

// Demo starts an embedded broker, runs the live job on it while the simulator produces
// o.Events events, reads the outputs back as a subscriber would, stops the job gracefully
// and summarises. It works on a copy of c pointed at the embedded broker: c is left as it
// was. progress gets a progress bar when it is a terminal. Its goroutines (the job, the
// output reader, the producer) belong to one errgroup, waited for before the broker
// closes, on every return.
func Demo(ctx context.Context, c *config.Config, o DemoOptions, progress io.Writer) (*DemoSummary, error) {
	demo := *c
	c = &demo
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

	stats := &pipeline.Stats{}
	l, err := NewLive(ctx, cc, LiveDeps{Registry: prometheus.NewRegistry(), Logger: log, Stats: stats})
	if err != nil {
		return nil, err
	}
	// Every goroutine below is in g; each reports through its channel (followOutputs
	// says which one failed first) and closes what it alone uses. Whatever Demo returns,
	// the deferred stopAll and Wait end them before the broker closes (deferred above),
	// so the job never drains into a closing broker.
	var g errgroup.Group
	allCtx, stopAll := context.WithCancel(ctx)
	defer func() {
		stopAll()
		_ = g.Wait() // their errors went to the channels
	}()
	runCtx, stopRun := context.WithCancel(allCtx)
	defer stopRun()
	runErr := make(chan error, 1)
	g.Go(func() error {
		err := l.Run(runCtx)
		runErr <- err
		return err
	})

	// Read back every output topic from the start, as a subscriber would.
	outputs := audit.NewOutputs(c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	reader, err := topics.NewReader(c.Kafka, topics.FromStart, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	if err != nil {
		return nil, err
	}
	readCtx, stopRead := context.WithCancel(allCtx)
	defer stopRead()
	readDone := make(chan error, 1)
	g.Go(func() error {
		defer reader.Close()
		err := outputs.Consume(readCtx, reader)
		readDone <- err
		return err
	})

	prod, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var produced atomic.Int64
	prodDone := make(chan produceDone, 1)
	g.Go(func() error {
		defer prod.Close()
		r, err := sim.Produce(allCtx, prod, sim.ProduceOptions{
			Events: o.Events, Rate: o.Rate, Seed: o.Seed, BadFraction: o.BadFraction,
			Topic: c.Topics.Input[0], Labels: c.Topics.Labels,
		}, &produced)
		prodDone <- produceDone{r, err}
		return err
	})
	res, err := followOutputs(ctx, o, outputs, progress, prodDone, runErr, readDone)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
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
	if err := <-readDone; err != nil {
		return nil, fmt.Errorf("reading outputs: %w", err)
	}

	q := stats.Latency.Quantiles(0.5, 0.99)
	n := outputs.Counts()
	s := &DemoSummary{
		Events: res.Events, BadInjected: res.Bad, Uncommitted: behind,
		Predictions: n.Predictions, DeadLettered: n.DeadLettered, Alerts: n.Alerts, Duplicates: n.Duplicates,
		Seconds: elapsed.Seconds(), EventsPerSecond: float64(res.Events) / elapsed.Seconds(),
		LatencyP50Ms: float64(q[0]) / 1e6, LatencyP99Ms: float64(q[1]) / 1e6,
		Batches: stats.Batches.Load(), Model: l.Model().Name(), ModelVersion: l.Model().Version(),
		Alert: outputs.FirstAlert(),
	}
	if s.Batches > 0 {
		s.MeanBatch = float64(stats.Rows.Load()) / float64(s.Batches)
	}
	return s, nil
}

type produceDone struct {
	res sim.ProduceResult
	err error
}

// followOutputs follows the outputs until every produced event has one, and fails when
// the producer, the job or the reader does, or when no output arrives for o.Timeout.
func followOutputs(ctx context.Context, o DemoOptions, outputs *audit.Outputs, progress io.Writer,
	prodDone <-chan produceDone, runErr, readDone <-chan error) (sim.ProduceResult, error) {
	bar := newBar(progress, o.Events)
	var res sim.ProduceResult
	producing := true
	lastProgress, lastDone := time.Now(), int64(-1)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done := outputs.Scored()
		if bar != nil {
			_ = bar.Set64(done)
		}
		if done != lastDone {
			lastDone, lastProgress = done, time.Now()
		}
		if !producing && done >= res.Events {
			break
		}
		if time.Since(lastProgress) > o.Timeout {
			return res, fmt.Errorf("no output for %v: %d of %d events have an output", o.Timeout, done, o.Events)
		}
		select {
		case p := <-prodDone:
			if p.err != nil {
				return res, p.err
			}
			res, producing = p.res, false
		case err := <-runErr:
			return res, fmt.Errorf("scoring stopped early: %w", err)
		case err := <-readDone:
			return res, fmt.Errorf("reading outputs: %w", err)
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(progress)
	}
	return res, nil
}

// Print writes the summary as `streamscore demo` prints it.
func (s *DemoSummary) Print(w io.Writer) {
	fmt.Fprintf(w, "events          %d (%d malformed injected)\n", s.Events, s.BadInjected)
	fmt.Fprintf(w, "predictions     %d\n", s.Predictions)
	fmt.Fprintf(w, "fraud alerts    %d\n", s.Alerts)
	fmt.Fprintf(w, "dead-lettered   %d\n", s.DeadLettered)
	fmt.Fprintf(w, "duplicates      %d, uncommitted %d\n", s.Duplicates, s.Uncommitted)
	fmt.Fprintf(w, "throughput      %.0f events/s over %.2fs\n", s.EventsPerSecond, s.Seconds)
	fmt.Fprintf(w, "latency         p50 %.2f ms, p99 %.2f ms (event to acknowledged prediction)\n", s.LatencyP50Ms, s.LatencyP99Ms)
	fmt.Fprintf(w, "batches         %d, mean size %.1f\n", s.Batches, s.MeanBatch)
	fmt.Fprintf(w, "model           %s %s\n", s.Model, s.ModelVersion)
	var alert bytes.Buffer
	if json.Indent(&alert, s.Alert, "  ", "  ") == nil {
		fmt.Fprintf(w, "an alert, as a subscriber receives it (reasons: docs/reasons.md):\n  %s\n", alert.Bytes())
	}
}
