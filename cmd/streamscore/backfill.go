package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

type backfillOptions struct {
	from      time.Time // zero: earliest
	out       string    // topic:NAME or file:PATH
	batchSize int
}

type backfillSummary struct {
	Events          int64   `json:"events"`
	Predictions     int64   `json:"predictions"`
	DeadLettered    int64   `json:"dead_lettered"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	MeanBatch       float64 `json:"mean_batch_size"`
	Out             string  `json:"out"`
	Model           string  `json:"model"`
	ModelVersion    string  `json:"model_version"`
}

func newBackfillCmd(g *globalFlags) *cobra.Command {
	var from string
	var jsonOut bool
	o := backfillOptions{}
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Replay the input topics through the live operator into a topic or a file",
		Long: `backfill reads every partition of the input topics from the earliest offset (or the
first record at or after --from) up to the end offsets captured when it starts, and scores
them through exactly the operator that 'run' uses: same decoder, features, batcher and
model. Only the source and the sink differ. It uses no consumer group, commits nothing,
and may run while live scoring runs. Predictions go to --out (default
topic:<topics.backfill>); dead letters go to <topic>.dlq, or into the file as
{"dead_letter":…} lines. Scores are bit-identical to the live ones: check with 'verify'.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if o.from, err = parseFrom(from); err != nil {
				return err
			}
			if o.out == "" {
				o.out = "topic:" + c.Topics.Backfill
			}
			cc, log, err := prepare(c, true)
			if err != nil {
				return err
			}
			s, err := runBackfill(cmd.Context(), cc, o, log, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backfilled %d events into %s: %d predictions, %d dead letters, %.1fs, %.0f events/s, mean batch %.0f (model %s %s)\n",
				s.Events, s.Out, s.Predictions, s.DeadLettered, s.Seconds, s.EventsPerSecond, s.MeanBatch, s.Model, s.ModelVersion)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "earliest", "earliest, or the RFC 3339 time of the first record to replay")
	fl.StringVar(&o.out, "out", "", "topic:NAME or file:PATH (default topic:<topics.backfill>)")
	fl.IntVar(&o.batchSize, "batch-size", 256, "rows per ONNX Runtime call; scores do not depend on it (256 is the reference model's fastest, see make bench)")
	fl.BoolVar(&jsonOut, "json", false, "print the summary as one JSON object")
	return cmd
}

// parseFrom reads a --from flag: earliest (the zero time) or an RFC 3339 time.
func parseFrom(from string) (time.Time, error) {
	if from == "" || from == "earliest" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, from)
	if err != nil {
		return time.Time{}, fmt.Errorf("--from %q: want earliest or an RFC 3339 time such as 2018-07-01T00:00:00Z", from)
	}
	return t, nil
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func runBackfill(ctx context.Context, c *config.Compiled, o backfillOptions, log *zap.Logger, progressOut io.Writer) (*backfillSummary, error) {
	kind, name, ok := strings.Cut(o.out, ":")
	if !ok || name == "" || (kind != "topic" && kind != "file") {
		return nil, fmt.Errorf("--out %q: want topic:NAME or file:PATH", o.out)
	}
	kc := c.Kafka
	kc.Logger = log
	src, err := topics.NewReplay(ctx, kc, topics.ReplayOptions{Topics: c.Topics.Input, From: o.from})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	model, err := scorer.Open(c.ModelOptions())
	if err != nil {
		return nil, err
	}
	defer model.Close()

	oc := c.Operator(model)
	oc.Topics = pipeline.Topics{Predictions: name, DeadLetter: name + ".dlq"} // no alerts from a backfill
	if oc.Batch, err = c.BatchJobBatcher(o.batchSize); err != nil {
		return nil, fmt.Errorf("--batch-size: %w", err)
	}
	oc.Logger = log
	oc.Metrics = pipeline.NewMetrics(prometheus.NewRegistry())
	stats := &pipeline.Stats{}
	oc.Stats = stats
	closeState, err := stateSources(ctx, c, kc, &oc, true)
	if err != nil {
		return nil, err
	}
	defer closeState()

	var sink pipeline.Sink
	var closeSink func() error
	switch kind {
	case "file":
		f, err := os.Create(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sink, closeSink = pipeline.NewFileSink(f, name, name+".dlq"), f.Close
	case "topic":
		adm, err := topics.NewAdmin(kc)
		if err != nil {
			return nil, err
		}
		parts, err := adm.Partitions(ctx, c.Topics.Input[0])
		if err == nil {
			err = adm.EnsureTopics(ctx, c.Topics.ReplicationFactor,
				topics.TopicSpec{Name: name, Partitions: parts[c.Topics.Input[0]]},
				topics.TopicSpec{Name: name + ".dlq", Partitions: parts[c.Topics.Input[0]]})
		}
		adm.Close()
		if err != nil {
			return nil, err
		}
		// Throughput over latency: longer linger and a deeper buffer make bigger batches.
		p, err := topics.NewProducer(kc, topics.ProducerOptions{Linger: 5 * time.Millisecond, Compression: c.Producer.Compression})
		if err != nil {
			return nil, err
		}
		defer p.Close()
		sink, closeSink = p, func() error { return nil }
	}
	op, err := pipeline.New(oc, src, sink)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	err = runWithBar(progressOut, src.Total(), stats.Done.Load, func() error { return op.Run(ctx) })
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("backfill interrupted after %d events: %w", stats.Done.Load(), ctx.Err())
	}
	if err := closeSink(); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	s := &backfillSummary{
		Events: stats.In.Load(), Predictions: stats.Predictions.Load(), DeadLettered: stats.DeadLettered.Load(),
		Seconds: elapsed.Seconds(), EventsPerSecond: float64(stats.In.Load()) / elapsed.Seconds(),
		Out: o.out, Model: model.Name(), ModelVersion: model.Version(),
	}
	if b := stats.Batches.Load(); b > 0 {
		s.MeanBatch = float64(stats.Rows.Load()) / float64(b)
	}
	return s, nil
}
