package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Synchronous requests. A front door (the HTTP API) scores rows through the operator's own
// batcher rather than a model of its own, so a burst of requests is batched with stream
// rows, scored by the same version in the same ONNX Runtime call, and gets bit-identical
// scores for the same feature vector. A request row is a row whose req is set: the flush
// writes its score back to the request instead of routing it to the sink, and it never
// touches commit tracking, because it has no input offset. Request rows are submitted as
// urgent rows (scorer.Batcher.SubmitUrgent), so a catch-up that fills the stream's queue
// does not hold them back.

// ErrNotRunning is returned by Infer when the operator is not scoring: it has stopped, or
// stopped before the request's rows were scored.
var ErrNotRunning = errors.New("operator is not scoring: it stopped (shutting down or failed)")

// ErrVersionChanged is returned by Infer when a live swap happened between the batches
// that scored one request's rows; scoring the request again gives one version.
var ErrVersionChanged = errors.New("the live model version changed while the request was scored: send it again")

// InferResult is the scores of one request, in row order, and the version that made them.
type InferResult struct {
	Scores  []float32
	Model   string
	Version string
	// Scorer is the version that scored the rows (an Explainer when it can explain).
	Scorer Scorer
}

// request is one Infer call in flight. Its fields are written only by the flush, on the
// batcher goroutine, and read by Infer after done is closed.
type request struct {
	scores []float32
	model  Scorer
	mixed  bool
	left   int // rows not yet scored
	done   chan struct{}
}

// answer records the score of the request's row i.
func (q *request) answer(i int32, score float32, m Scorer) {
	q.scores[i] = score
	switch {
	case q.model == nil:
		q.model = m
	case q.model.Version() != m.Version():
		q.mixed = true
	}
	q.left--
	if q.left == 0 {
		close(q.done)
	}
}

// Infer scores n rows of features (row-major, NumFeatures values each) with the live
// model, through the operator's batcher ahead of queued stream rows, and returns their
// scores. It is safe for concurrent use while Run runs. It returns ctx's error when ctx
// ends first (rows already queued are still scored, and their scores dropped), and
// ErrNotRunning when the operator stops first. features is copied.
func (o *Operator) Infer(ctx context.Context, features []float32, n int) (InferResult, error) {
	if n < 1 || len(features) != n*o.nFeat {
		return InferResult{}, fmt.Errorf("%d values for %d rows: the model takes %d features per row", len(features), n, o.nFeat)
	}
	feat := append([]float32(nil), features...)
	q := &request{scores: make([]float32, n), left: n, done: make(chan struct{})}
	for i := range n {
		r := row{req: q, idx: int32(i), feat: feat[i*o.nFeat : (i+1)*o.nFeat : (i+1)*o.nFeat]}
		if err := o.batch.SubmitUrgent(ctx, r); err != nil {
			if ctx.Err() != nil {
				return InferResult{}, err
			}
			return InferResult{}, ErrNotRunning
		}
	}
	select {
	case <-q.done:
	case <-ctx.Done():
		return InferResult{}, ctx.Err()
	case <-o.batch.Stopped():
		select {
		case <-q.done: // scored in the last batch
		default:
			return InferResult{}, ErrNotRunning
		}
	}
	if q.mixed {
		return InferResult{}, ErrVersionChanged
	}
	return InferResult{Scores: q.scores, Model: q.model.Name(), Version: q.model.Version(), Scorer: q.model}, nil
}

// Live is the model version that scores the next batch.
func (o *Operator) Live() Scorer { return o.models.Choose().Live }

// NumFeatures is the width of a row: the model's input size.
func (o *Operator) NumFeatures() int { return o.nFeat }

// Scoring reports whether Run's batcher is still taking rows.
func (o *Operator) Scoring() bool {
	select {
	case <-o.batch.Stopped():
		return false
	default:
		return true
	}
}

// EventCheck validates events exactly as the operator's fetch loop will, for a front door
// that produces them to an input topic: an event it refuses would be dead-lettered with
// the same class, so the door can refuse it instead of writing it. It is safe for
// concurrent use.
type EventCheck struct {
	schema *Schema
	fs     *FeatureSpec
	pool   sync.Pool // of *eventChecker: a Decoder is not safe for concurrent use
}

type eventChecker struct {
	dec  *Decoder
	ev   *Event
	feat []float32
}

// NewEventCheck returns a check for a compiled schema and feature spec.
func NewEventCheck(s *Schema, fs *FeatureSpec) *EventCheck {
	c := &EventCheck{schema: s, fs: fs}
	c.pool.New = func() any {
		d := NewDecoder(s)
		return &eventChecker{dec: d, ev: d.NewEvent(), feat: make([]float32, fs.Len())}
	}
	return c
}

// Check decodes value and computes its stateless features as the fetch loop does, and
// returns the record key it must be produced with: the value of schema.key_field (nil
// without one). The error, when not nil, is a *DecodeError naming the class.
func (c *EventCheck) Check(value []byte) (key []byte, err error) {
	ec := c.pool.Get().(*eventChecker)
	defer c.pool.Put(ec)
	now := time.Now()
	if err := ec.dec.Decode(value, now, ec.ev); err != nil {
		return nil, err
	}
	if i := c.schema.keyField; i >= 0 {
		if c.schema.Fields[i].Type == TypeString {
			key = []byte(ec.ev.Str[i])
		} else {
			key = strconv.AppendInt(nil, ec.ev.Int[i], 10)
		}
	}
	// The whole check of the fetch loop, key rules included, on the record as produced.
	rec := &Record{Key: key, Value: value, Timestamp: now}
	if err := decodeRecord(ec.dec, c.fs, rec, ec.ev, ec.feat); err != nil {
		return nil, err
	}
	return key, nil
}

// Schema is the schema events are checked against.
func (c *EventCheck) Schema() *Schema { return c.schema }
