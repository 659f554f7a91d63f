package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/exportfile"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// ExportOptions say what an export replays and where it writes.
type ExportOptions struct {
	From time.Time // zero: earliest
	Out  string    // file:PATH.csv or file:PATH.parquet
	// Registry gets the operator's metrics (nil: a private registry).
	Registry prometheus.Registerer
}

// ExportSummary is what an export did; export --json prints it.
type ExportSummary struct {
	Events       int64   `json:"events"`
	Rows         int64   `json:"rows"`
	Labelled     int64   `json:"labelled"`
	DeadLettered int64   `json:"dead_lettered"`
	Labels       int     `json:"labels_read"`
	Seconds      float64 `json:"seconds"`
	Out          string  `json:"out"`
}

// exportBatchSize is the export's batch size: with no model to call, it only sets how
// many rows go through the operator's flush at once.
const exportBatchSize = 256

// Export is the backfill with a feature sink: it replays the input topics through the
// operator (no model: the features only) and writes one row per scorable event, its
// features and its label from the labels topic, to a CSV or Parquet file. It returns when
// the replay is done or ctx ends (an error).
func Export(ctx context.Context, c *config.Compiled, o ExportOptions, log *zap.Logger, progress io.Writer) (*ExportSummary, error) {
	kind, path, ok := strings.Cut(o.Out, ":")
	if !ok || kind != "file" || path == "" {
		return nil, fmt.Errorf("--out %q: want file:PATH.csv or file:PATH.parquet", o.Out)
	}
	newWriter, err := exportfile.FormatOf(path)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	if err := installValueFormat(ctx, c, log, nil); err != nil {
		return nil, err
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
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w, err := newWriter(f, ExportLayout(c))
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}

	// No model: the export is the features (and a training set may be for a new model).
	oc := c.Operator(pipeline.FeaturesOnly{N: c.Features.Len()})
	oc.Drift = nil // no scores: nothing to compare
	oc.Topics = pipeline.Topics{Predictions: "export", DeadLetter: "export.dlq"}
	if oc.Batch, err = c.BatchJobBatcher(exportBatchSize); err != nil {
		return nil, err
	}
	sink := &exportSink{
		predictions: oc.Topics.Predictions, w: w, labels: labels,
		dec: pipeline.NewDecoder(c.Schema), idField: idField, keyField: keyField,
	}
	sink.ev = sink.dec.NewEvent()
	job := replayJob{name: "export", from: o.From, registry: o.Registry, log: log, progress: progress}
	stats, _, err := job.run(ctx, c, kc, oc, sink)
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &ExportSummary{
		Out: o.Out, Labels: len(labels), Events: stats.In.Load(),
		Rows: sink.rows, Labelled: sink.labelled, DeadLettered: sink.deadLettered,
		Seconds: time.Since(start).Seconds(),
	}, nil
}

// ExportLayout is the columns of c's export: fixed columns, the features in model order,
// the label.
func ExportLayout(c *config.Compiled) exportfile.Layout {
	k := c.Schema.FieldIndex(c.Schema.KeyField)
	id := c.Feedback.IDField
	if id == "" {
		id = "id"
	}
	return exportfile.Layout{
		ID:        id,
		Key:       c.Schema.KeyField,
		StringKey: k >= 0 && c.Schema.Fields[k].Type == pipeline.TypeString,
		Features:  c.Features.Names(),
		Label:     strings.ToUpper(c.Feedback.LabelField),
	}
}

// exportSink writes each prediction of the export's operator as a row, with the label of
// its event's id; dead letters are counted, not written. The operator produces
// predictions from its batcher goroutine, in fetch order (the batcher is FIFO), and dead
// letters from its fetch goroutine: the mutex serialises them. Every Produce is written
// (or has failed) before it acknowledges, so Flush has nothing to wait for.
type exportSink struct {
	predictions string
	labels      map[int64]float64
	idField     int
	keyField    int

	mu           sync.Mutex
	w            exportfile.Writer
	dec          *pipeline.Decoder
	ev           *pipeline.Event
	row          exportfile.Row // reused: writers do not keep it
	rows         int64
	labelled     int64
	deadLettered int64
}

func (s *exportSink) Produce(out *record.Output, ack func(error)) {
	s.mu.Lock()
	var err error
	if out.Topic == s.predictions {
		err = s.write(out)
	} else {
		s.deadLettered++
	}
	s.mu.Unlock()
	ack(err)
}

// write writes the row of one prediction. The id and the key are read from the input
// record again: the output carries the features and the event time, not the fields.
func (s *exportSink) write(out *record.Output) error {
	r := out.Source
	if err := s.dec.Decode(r.Value, r.Timestamp, s.ev); err != nil {
		return fmt.Errorf("decoding %s/%d@%d, which was scored: %w", r.Topic, r.Partition, r.Offset, err)
	}
	row := &s.row
	row.ID = s.ev.Int[s.idField]
	row.Time = out.EventTime
	row.KeyInt, row.KeyStr = s.ev.Int[s.keyField], s.ev.Str[s.keyField]
	row.Partition, row.Offset = r.Partition, r.Offset
	row.Features = out.Features
	row.Label, row.HasLabel = s.labels[row.ID]
	if row.HasLabel {
		s.labelled++
	}
	s.rows++
	return s.w.WriteRow(row)
}

func (s *exportSink) Flush(context.Context) error { return nil }

// readLabels reads the whole labels topic (to the end offsets seen now) into a map from
// the id field to the label field. Records that do not decode are skipped and counted in
// the log: they carry no usable label.
func readLabels(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, log *zap.Logger) (map[int64]float64, error) {
	fb := c.Feedback
	if err := fb.Compile(); err != nil {
		return nil, err
	}
	idI, labI := fb.FieldIndex(fb.IDField), fb.FieldIndex(fb.LabelField)
	if idI < 0 || labI < 0 {
		return nil, fmt.Errorf("feedback: id_field %q and label_field %q must be feedback fields", fb.IDField, fb.LabelField)
	}
	dec := pipeline.NewDecoder(&fb.Schema)
	ev := dec.NewEvent()
	out := map[int64]float64{}
	bad := 0
	err := topics.ReadToEnd(ctx, kc, []string{c.Topics.Labels}, func(recs []record.Record) error {
		for i := range recs {
			if dec.Decode(recs[i].Value, recs[i].Timestamp, ev) != nil || !ev.Has(idI) || !ev.Has(labI) {
				bad++
				continue
			}
			out[ev.Int[idI]] = ev.Num[labI]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading labels: %w", err)
	}
	if bad > 0 {
		log.Warn("skipped labels that do not decode", zap.Int("records", bad))
	}
	return out, nil
}
