package main

import (
	"context"
	"errors"
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
	"github.com/streamscore/streamscore/topics"
)

type exportOptions struct {
	from time.Time // zero: earliest
	out  string    // file:PATH.csv or file:PATH.parquet
}

type exportSummary struct {
	Events       int64   `json:"events"`
	Rows         int64   `json:"rows"`
	Labelled     int64   `json:"labelled"`
	DeadLettered int64   `json:"dead_lettered"`
	Labels       int     `json:"labels_read"`
	Seconds      float64 `json:"seconds"`
	Out          string  `json:"out"`
}

func newExportCmd(g *globalFlags) *cobra.Command {
	var from string
	var jsonOut bool
	o := exportOptions{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a training set: the input topics replayed through the operator, features and labels to a CSV or Parquet file",
		Long: `export is the backfill driver with a feature sink. It replays every partition of the
input topics from the earliest offset (or the first record at or after --from) to the end
offsets captured at start through exactly the operator that 'run' uses, window state and
feedback join included, and writes one row per scorable event: its id, event time,
key, source partition and offset, every feature under its configured name, and its label
from the labels topic when one is known (empty otherwise). Events that cannot be scored
are counted, not written. The features are the ones live scoring computes for the same
events: train on them and the model is served what it learned from.

The file's extension picks its format: .csv, or .parquet (the same columns in the same
order, typed: features FLOAT, the label an optional DOUBLE that is null where no label is
known, the event time a UTC TIMESTAMP in microseconds; zstd-compressed).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if o.from, err = parseFrom(from); err != nil {
				return err
			}
			cc, log, err := prepare(c, false)
			if err != nil {
				return err
			}
			s, err := runExport(cmd.Context(), cc, o, log, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d rows (%d labelled) of %d events to %s in %.1fs; %d dead-lettered, %d labels read\n",
				s.Rows, s.Labelled, s.Events, s.Out, s.Seconds, s.DeadLettered, s.Labels)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "earliest", "earliest, or the RFC 3339 time of the first record to export (window state is rebuilt from before it)")
	fl.StringVar(&o.out, "out", "", "file:PATH.csv or file:PATH.parquet")
	fl.BoolVar(&jsonOut, "json", false, "print the summary as one JSON object")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// exportLayout is the columns of c's export: fixed columns, the features in model order,
// the label.
func exportLayoutOf(c *config.Compiled) exportLayout {
	k := c.Schema.FieldIndex(c.Schema.KeyField)
	return exportLayout{
		ID:        exportIDField(c),
		Key:       c.Schema.KeyField,
		StringKey: k >= 0 && c.Schema.Fields[k].Type == pipeline.TypeString,
		Features:  c.Features.Names(),
		Label:     strings.ToUpper(c.Feedback.LabelField),
	}
}

func exportIDField(c *config.Compiled) string {
	if c.Feedback.IDField != "" {
		return c.Feedback.IDField
	}
	return "id"
}

func runExport(ctx context.Context, c *config.Compiled, o exportOptions, log *zap.Logger, progressOut io.Writer) (*exportSummary, error) {
	kind, path, ok := strings.Cut(o.out, ":")
	if !ok || kind != "file" || path == "" {
		return nil, fmt.Errorf("--out %q: want file:PATH.csv or file:PATH.parquet", o.out)
	}
	newWriter, err := exportFormat(path)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	idField := c.Schema.FieldIndex(c.Feedback.IDField)
	keyField := c.Schema.FieldIndex(c.Schema.KeyField)
	if idField < 0 || keyField < 0 || c.Feedback.LabelField == "" {
		return nil, errors.New("export needs feedback.id_field and feedback.label_field, and schema.key_field; the id field must be in the event schema too")
	}
	kc := c.Kafka
	kc.Logger = log
	start := time.Now()
	labels, err := readLabels(ctx, c, kc, log)
	if err != nil {
		return nil, err
	}
	src, err := topics.NewReplay(ctx, kc, topics.ReplayOptions{Topics: c.Topics.Input, From: o.from})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w, err := newWriter(f, exportLayoutOf(c))
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}

	// No model: the export is the features (and a training set may be for a new model).
	oc := c.Operator(pipeline.FeaturesOnly{N: c.Features.Len()})
	oc.Topics = pipeline.Topics{Predictions: "export", DeadLetter: "export.dlq"}
	if oc.Batch, err = c.BatchJobBatcher(256); err != nil {
		return nil, err
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
	s := &exportSummary{Out: o.out, Labels: len(labels)}
	var row exportRecord // reused: the tap runs on one goroutine, writers do not keep it
	oc.FeatureTap = func(r *pipeline.Record, ev *pipeline.Event, feat []float32) error {
		row.ID = ev.Int[idField]
		row.Time = ev.Time
		row.KeyInt, row.KeyStr = ev.Int[keyField], ev.Str[keyField]
		row.Partition, row.Offset = r.Partition, r.Offset
		row.Features = feat
		row.Label, row.HasLabel = labels[row.ID]
		if row.HasLabel {
			s.Labelled++
		}
		s.Rows++
		return w.WriteRow(&row)
	}
	op, err := pipeline.New(oc, src, pipeline.DiscardSink{})
	if err != nil {
		return nil, err
	}
	if err := runWithBar(progressOut, src.Total(), stats.Done.Load, func() error { return op.Run(ctx) }); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("export interrupted after %d events: %w", stats.Done.Load(), ctx.Err())
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	s.Events, s.DeadLettered = stats.In.Load(), stats.DeadLettered.Load()
	s.Seconds = time.Since(start).Seconds()
	return s, nil
}

// readLabels reads the whole labels topic (to the end offsets seen now) into a map from
// the id field to the label field. Records that do not decode are skipped and counted in
// the log: they carry no usable label.
func readLabels(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, log *zap.Logger) (map[int64]float64, error) {
	fb := c.Feedback
	if err := fb.Schema.Compile(); err != nil {
		return nil, err
	}
	idI, labI := fb.FieldIndex(fb.IDField), fb.FieldIndex(fb.LabelField)
	if idI < 0 || labI < 0 {
		return nil, fmt.Errorf("feedback: id_field %q and label_field %q must be feedback fields", fb.IDField, fb.LabelField)
	}
	r, err := topics.NewReplay(ctx, kc, topics.ReplayOptions{Topics: []string{c.Topics.Labels}})
	if err != nil {
		return nil, fmt.Errorf("reading labels: %w", err)
	}
	defer r.Close()
	dec := pipeline.NewDecoder(&fb.Schema)
	ev := dec.NewEvent()
	out := map[int64]float64{}
	bad := 0
	for {
		recs, err := r.Fetch(ctx)
		for i := range recs {
			if dec.Decode(recs[i].Value, recs[i].Timestamp, ev) != nil || !ev.Has(idI) || !ev.Has(labI) {
				bad++
				continue
			}
			out[ev.Int[idI]] = ev.Num[labI]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading labels: %w", err)
		}
	}
	if bad > 0 {
		log.Warn("skipped labels that do not decode", zap.Int("records", bad))
	}
	return out, nil
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
