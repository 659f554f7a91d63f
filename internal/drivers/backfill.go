package drivers

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// BackfillOptions say what a backfill replays and where it writes.
type BackfillOptions struct {
	From      time.Time // zero: earliest
	Out       string    // topic:NAME or file:PATH
	BatchSize int       // rows per ONNX Runtime call; 0: batch.max_size
	// Model, NAME@VERSION, replays with that registry version (a what-if); empty: the
	// version live scoring used for each event (registry on), or model.path.
	Model string
	// Registry gets the operator's metrics (nil: a private registry).
	Registry prometheus.Registerer
	// Group, when set, makes this process one of a distributed backfill job (distbackfill.go):
	// the processes started with the same Group share the partitions of one replay.
	Group string
	// Instance names this process in the job (static membership, transactional id); empty:
	// instance_id, else unique to the process.
	Instance string
	// JobTopic is the compacted topic of the job records (default DefaultJobTopic).
	JobTopic string
}

// BackfillSummary is what a backfill did; backfill --json prints it.
type BackfillSummary struct {
	Events          int64   `json:"events"`
	Predictions     int64   `json:"predictions"`
	DeadLettered    int64   `json:"dead_lettered"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	MeanBatch       float64 `json:"mean_batch_size"`
	Out             string  `json:"out"`
	Model           string  `json:"model"`
	ModelVersion    string  `json:"model_version"`
	// The whole job of a distributed backfill (--group), every process together.
	Group               string  `json:"group,omitempty"`
	JobOffsets          int64   `json:"job_offsets,omitempty"`
	JobDone             int64   `json:"job_offsets_done,omitempty"`
	JobSeconds          float64 `json:"job_seconds,omitempty"`
	JobOffsetsPerSecond float64 `json:"job_offsets_per_second,omitempty"`
}

// Text is the summary as the backfill command prints it.
func (s *BackfillSummary) Text() string {
	t := fmt.Sprintf("backfilled %d events into %s: %d predictions, %d dead letters, %.1fs, %.0f events/s, mean batch %.0f (model %s %s)\n",
		s.Events, s.Out, s.Predictions, s.DeadLettered, s.Seconds, s.EventsPerSecond, s.MeanBatch, s.Model, s.ModelVersion)
	if s.Group != "" {
		t += fmt.Sprintf("job %s (all processes): %d of %d offsets committed in %.1fs since the job began, %.0f offsets/s\n",
			s.Group, s.JobDone, s.JobOffsets, s.JobSeconds, s.JobOffsetsPerSecond)
	}
	return t
}

// Backfill scores the input topics, from o.From to the end offsets seen at start, through
// the live operator into a topic or a file, committing nothing. progress gets a progress
// bar when it is a terminal. It returns when the replay is done or ctx ends (an error).
func Backfill(ctx context.Context, c *config.Compiled, o BackfillOptions, log *zap.Logger, progress io.Writer) (*BackfillSummary, error) {
	kind, name, ok := strings.Cut(o.Out, ":")
	if !ok || name == "" || (kind != "topic" && kind != "file") {
		return nil, fmt.Errorf("--out %q: want topic:NAME or file:PATH", o.Out)
	}
	if err := checkGroupBackfill(c, o, kind); err != nil {
		return nil, err
	}
	if err := installValueFormat(ctx, c, log, nil); err != nil {
		return nil, err
	}
	kc := c.Kafka
	kc.Logger = log
	model, err := scorer.Open(c.ModelOptions())
	if err != nil {
		return nil, err
	}
	defer model.Close()
	oc := c.Operator(model)
	oc.Topics = pipeline.Topics{Predictions: name, DeadLetter: name + ".dlq"} // no alerts, no shadow from a backfill
	oc.Drift = backfillDrift(oc.Drift, kind, name)
	choice, versions, closeModels, err := replayModels(ctx, c, kc, model, o.Model, log)
	if err != nil {
		return nil, err
	}
	defer closeModels()
	oc.Models = choice
	if refs, ok := choice.(lifecycle.ManifestReferences); ok {
		lifecycle.WithManifestReferences(oc.Drift, refs)
	}
	if oc.Batch, err = c.BatchJobBatcher(o.BatchSize); err != nil {
		return nil, fmt.Errorf("--batch-size: %w", err)
	}
	var s *BackfillSummary
	if o.Group != "" {
		s, err = groupBackfill(ctx, c, kc, oc, o, name, log, progress)
	} else {
		s, err = singleBackfill(ctx, c, kc, oc, o, kind, name, log, progress)
	}
	if err != nil {
		return nil, err
	}
	s.Out, s.Model, s.ModelVersion = o.Out, model.Name(), versions
	return s, nil
}

// singleBackfill replays every partition in this process, outside any group.
func singleBackfill(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, oc pipeline.Config, o BackfillOptions, kind, name string, log *zap.Logger, progress io.Writer) (*BackfillSummary, error) {
	sink, closeSink, err := backfillSink(ctx, c, kc, kind, name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = closeSink() }() // on an error path; on success it is closed and checked below
	job := replayJob{name: "backfill", from: o.From, registry: o.Registry, log: log, progress: progress}
	stats, elapsed, err := job.run(ctx, c, kc, oc, sink)
	if err != nil {
		return nil, err
	}
	if err := closeSink(); err != nil {
		return nil, err
	}
	return summarize(stats, elapsed), nil
}

// summarize is this process's part of a backfill.
func summarize(stats *pipeline.Stats, elapsed time.Duration) *BackfillSummary {
	s := &BackfillSummary{
		Events: stats.In.Load(), Predictions: stats.Predictions.Load(), DeadLettered: stats.DeadLettered.Load(),
		Seconds: elapsed.Seconds(), EventsPerSecond: float64(stats.In.Load()) / elapsed.Seconds(),
	}
	if b := stats.Batches.Load(); b > 0 {
		s.MeanBatch = float64(stats.Rows.Load()) / float64(b)
	}
	return s
}

// backfillSink opens the file or the topic (and its .dlq, created like the input) that a
// backfill writes. The returned close may be called more than once.
func backfillSink(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, kind, name string) (pipeline.Sink, func() error, error) {
	if kind == "file" {
		f, err := os.Create(name)
		if err != nil {
			return nil, nil, err
		}
		closed := false
		return pipeline.NewFileSink(f, name, name+".dlq"), func() error {
			if closed {
				return nil
			}
			closed = true
			return f.Close()
		}, nil
	}
	if err := ensureBackfillTopics(ctx, c, kc, name); err != nil {
		return nil, nil, err
	}
	// Throughput over latency: longer linger and a deeper buffer make bigger batches.
	p, err := topics.NewProducer(kc, topics.ProducerOptions{Linger: 5 * time.Millisecond, Compression: c.Producer.Compression})
	if err != nil {
		return nil, nil, err
	}
	closed := false
	return p, func() error {
		if !closed {
			closed = true
			p.Close()
		}
		return nil
	}, nil
}

// ensureBackfillTopics creates the topic a backfill writes, and its .dlq and .drift, with
// as many partitions as the first input topic.
func ensureBackfillTopics(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, name string) error {
	adm, err := topics.NewAdmin(kc)
	if err != nil {
		return err
	}
	defer adm.Close()
	in := c.Topics.Input[0]
	parts, err := adm.Partitions(ctx, in)
	if err != nil {
		return err
	}
	return adm.EnsureTopics(ctx, c.Topics.ReplicationFactor,
		topics.TopicSpec{Name: name, Partitions: parts[in]},
		topics.TopicSpec{Name: name + ".dlq", Partitions: parts[in]},
		topics.TopicSpec{Name: name + ".drift", Partitions: parts[in]})
}

// backfillDrift writes a topic backfill's drift records to NAME.drift, beside its
// predictions, never to the live drift topic; a file backfill computes none.
func backfillDrift(d *pipeline.DriftConfig, kind, name string) *pipeline.DriftConfig {
	if d == nil || kind != "topic" {
		return nil
	}
	o := *d
	o.Topic = name + ".drift"
	return &o
}
