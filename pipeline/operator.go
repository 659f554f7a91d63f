// Package pipeline is the operator that every driver runs: decode → features → batcher →
// scorer → route, with dead letters for bad input and commit tracking that never commits
// an input offset before every output it caused is acknowledged. It knows nothing of
// which driver runs it: live scoring, backfill and the demo differ only in the Source and
// Sink they pass in.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
)

// The record types are defined in package record, so that topics can use them without
// importing the operator; these aliases keep the operator's API in its own words.
type (
	Record = record.Record
	Header = record.Header
	Output = record.Output
)

// Source yields input records. Fetch blocks until it has records; a bounded source returns
// io.EOF after its last record. Fetch is only called from one goroutine.
type Source interface {
	Fetch(ctx context.Context) ([]Record, error)
}

// Committer is a Source that stores consumed positions (a consumer group).
type Committer interface {
	Commit(ctx context.Context, offsets []Offset) error
}

// GroupSource is a Source whose partitions come and go with group rebalances.
type GroupSource interface {
	Source
	Committer
	// SetRebalanceHandlers installs the callbacks run when partitions are revoked (a
	// commit is still possible) or lost (it is not). Called once, before the first Fetch.
	SetRebalanceHandlers(revoked func(context.Context, []TopicPartition), lost func([]TopicPartition))
	// AllowRebalance is called after the records of each Fetch are registered for commit
	// tracking: a rebalance held back until then can proceed, and the revoke handler will
	// see those records.
	AllowRebalance()
}

// Transactional is a Source that is also the Sink and writes each fetch's outputs and its
// consumed offsets in one transaction (exactly-once). The operator finishes every record
// of a fetch, then calls EndBatch; false means the transaction was aborted (a rebalance)
// and the records will be fetched again.
type Transactional interface {
	Source
	Sink
	EndBatch(ctx context.Context) (committed bool, err error)
}

// Sink writes outputs. Produce must call ack exactly once, from any goroutine, when the
// output is durably written (nil) or definitely failed. Produce may block to apply
// backpressure. Flush waits until every produced output is acknowledged.
type Sink interface {
	Produce(out *Output, ack func(error))
	Flush(ctx context.Context) error
}

// Scorer is the model, as the operator sees it. *scorer.Model implements it.
type Scorer interface {
	Score(features []float32, n int, out []float32, scratch []float32) ([]float32, error)
	NumFeatures() int
	Name() string
	Version() string
}

// Topics are the output topic names.
type Topics struct {
	Predictions string
	Alerts      string // empty: no alerts
	DeadLetter  string
}

// Config is everything an Operator needs. Schema and Features must be compiled.
type Config struct {
	Schema    *Schema
	Features  *FeatureSpec
	Model     Scorer
	Threshold float32
	Topics    Topics
	Batch     scorer.BatcherConfig
	// CommitInterval is how often acknowledged positions are committed (default 1s).
	CommitInterval time.Duration
	// DrainTimeout bounds the wait for in-flight outputs on shutdown and on partition
	// revocation (default 10s).
	DrainTimeout time.Duration
	// MeasureLatency records event-to-prediction latency from the input record timestamps
	// (live scoring; meaningless for backfills of old data).
	MeasureLatency bool
	Metrics        *Metrics
	Stats          *Stats
	Logger         *zap.Logger
	// Now stamps scored_at. It never feeds a feature or a score.
	Now func() time.Time
	// History rebuilds the window state of a partition met for the first time (or fetched
	// again) from its log. Nil: state starts empty at the first record seen, which is
	// exact only when that is the partition's first record.
	History History
	// Feedback is the feedback topic that feedback windows join; required when the
	// feature spec has any.
	Feedback FeedbackSource
	// IncludeFeatures writes each prediction's feature vector into it ("features").
	IncludeFeatures bool
}

// Operator scores records from a Source into a Sink. Create it with New, run it once.
type Operator struct {
	cfg    Config
	src    Source
	sink   Sink
	log    *zap.Logger
	m      *Metrics
	st     *Stats
	tr     *tracker
	enc    *predictionEncoder
	nFeat  int
	batch  *scorer.Batcher[row]
	state  *windowState // nil without window features
	commit sync.Mutex   // serialises commits with revocations

	out map[string]prometheus.Counter // records_out by output topic, resolved once: Inc runs per ack

	failOnce sync.Once
	failErr  error
	failed   chan struct{}

	// scratch of the batcher goroutine
	mat    []float32
	scores []float32
	raw    []float32
}

type row struct {
	h         handle
	rec       *Record
	eventTime time.Time
	feat      []float32
}

// New validates cfg and prepares an operator.
func New(cfg Config, src Source, sink Sink) (*Operator, error) {
	switch {
	case cfg.Schema == nil || cfg.Schema.index == nil:
		return nil, errors.New("operator: schema missing or not compiled")
	case cfg.Features == nil:
		return nil, errors.New("operator: no feature spec")
	case cfg.Model == nil:
		return nil, errors.New("operator: no model")
	case cfg.Topics.Predictions == "" || cfg.Topics.DeadLetter == "":
		return nil, errors.New("operator: predictions and dead-letter topics are required")
	case src == nil || sink == nil:
		return nil, errors.New("operator: source and sink are required")
	}
	if cfg.Features.Len() != cfg.Model.NumFeatures() {
		return nil, fmt.Errorf("feature spec has %d features %v, but model %s takes %d inputs: make the spec match the model",
			cfg.Features.Len(), cfg.Features.Names(), cfg.Model.Name(), cfg.Model.NumFeatures())
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Stats == nil {
		cfg.Stats = &Stats{}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	o := &Operator{
		cfg: cfg, src: src, sink: sink, log: cfg.Logger, m: cfg.Metrics, st: cfg.Stats,
		enc: newPredictionEncoder(cfg.Model.Name(), cfg.Model.Version()), nFeat: cfg.Features.Len(),
		failed: make(chan struct{}),
	}
	o.tr = newTracker(o.recordDone)
	o.out = map[string]prometheus.Counter{}
	for _, t := range []string{cfg.Topics.Predictions, cfg.Topics.Alerts, cfg.Topics.DeadLetter} {
		if t != "" {
			o.out[t] = cfg.Metrics.recordsOut.WithLabelValues(t)
		}
	}
	b, err := scorer.NewBatcher(cfg.Batch, o.flush)
	if err != nil {
		return nil, err
	}
	o.batch = b
	if cfg.Features.HasWindows() {
		if o.state, err = newWindowState(cfg.Features, cfg.Schema, cfg.History, cfg.Feedback, cfg.Metrics, cfg.Logger); err != nil {
			return nil, err
		}
	}
	if gs, ok := src.(GroupSource); ok {
		gs.SetRebalanceHandlers(o.revoked, o.lost)
	}
	return o, nil
}

func (o *Operator) recordDone(ts time.Time) {
	o.st.Done.Add(1)
	if o.cfg.MeasureLatency {
		d := o.cfg.Now().Sub(ts)
		o.st.Latency.Observe(d)
		o.m.latency.Observe(d.Seconds())
	}
}

// fail records the first fatal error and stops the operator.
func (o *Operator) fail(err error) {
	o.failOnce.Do(func() {
		o.failErr = err
		close(o.failed)
	})
}

// Run scores until ctx is canceled or a bounded source is exhausted, then drains: every
// record already fetched is scored, every output acknowledged and the final positions
// committed, within DrainTimeout. It returns nil after a clean drain, and an error when an
// output could not be written (nothing past it is committed) or the drain timed out.
func (o *Operator) Run(ctx context.Context) error {
	// work outlives ctx so that fetched records are finished after a shutdown request; it
	// ends on a fatal error or when the drain gives up.
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	go func() {
		select {
		case <-o.failed:
			cancelWork()
		case <-work.Done():
		}
	}()

	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	go func() {
		select {
		case <-o.failed:
			stopFetch()
		case <-fetchCtx.Done():
		}
	}()

	var g errgroup.Group
	g.Go(func() error {
		defer o.batch.CloseInput()
		return o.fetchLoop(fetchCtx, work)
	})
	g.Go(func() error {
		err := o.batch.Run(work)
		if err != nil {
			o.fail(err)
		}
		return err
	})
	commitDone := make(chan struct{})
	stopCommits := make(chan struct{})
	if _, ok := o.src.(Committer); ok {
		go func() {
			defer close(commitDone)
			o.commitLoop(work, stopCommits)
		}()
	} else {
		close(commitDone)
	}

	runErr := g.Wait()
	// Everything fetched has been handed to the sink (or we failed). Wait for the acks.
	drainCtx, cancelDrain := context.WithTimeout(work, o.cfg.DrainTimeout)
	defer cancelDrain()
	flushErr := o.sink.Flush(drainCtx)
	if flushErr == nil {
		flushErr = o.waitDrained(drainCtx)
	}
	close(stopCommits)
	<-commitDone
	commitErr := o.commitNow(drainCtx, nil)

	if o.failErr != nil {
		return o.failErr
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	if flushErr != nil {
		return fmt.Errorf("draining outputs: %w", flushErr)
	}
	if commitErr != nil {
		return fmt.Errorf("final commit: %w", commitErr)
	}
	return nil
}

func (o *Operator) waitDrained(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for o.tr.pending() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d records still waiting for acknowledgements: %w", o.tr.pending(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func (o *Operator) fetchLoop(ctx, work context.Context) error {
	dec := NewDecoder(o.cfg.Schema)
	ev := dec.NewEvent()
	gs, isGroup := o.src.(GroupSource)
	for {
		recs, err := o.src.Fetch(ctx)
		// Records are registered for commit tracking before a rebalance held back by this
		// fetch may proceed, so the revoke handler waits for them.
		handles := make([]handle, len(recs))
		for i := range recs {
			r := &recs[i]
			handles[i] = o.tr.begin(TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset, r.LeaderEpoch, r.Timestamp)
		}
		if isGroup {
			gs.AllowRebalance()
		}
		if o.state != nil {
			o.state.newFetch()
		}
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			if len(recs) == 0 {
				return nil
			}
		} else if err != nil {
			return fmt.Errorf("fetching records: %w", err)
		}
		slab := make([]float32, len(recs)*o.nFeat)
		var lastTopic string
		var inCount float64
		for i := range recs {
			r := &recs[i]
			if r.Topic != lastTopic {
				if inCount > 0 {
					o.m.recordsIn.WithLabelValues(lastTopic).Add(inCount)
				}
				lastTopic, inCount = r.Topic, 0
			}
			inCount++
			feat := slab[i*o.nFeat : (i+1)*o.nFeat : (i+1)*o.nFeat]
			err := dec.CheckKey(r.Key)
			if err == nil {
				err = dec.Decode(r.Value, r.Timestamp, ev)
			}
			if err == nil {
				err = dec.CheckKeyField(r.Key, ev)
			}
			if err == nil {
				err = o.cfg.Features.Extract(ev, feat)
			}
			if err != nil {
				o.deadLetter(r, handles[i], err)
				continue
			}
			if o.state != nil {
				// work, not ctx: a record already fetched is finished after a stop request.
				if err := o.state.features(work, r, ev, feat); err != nil {
					return err
				}
			}
			if err := o.batch.Submit(work, row{h: handles[i], rec: r, eventTime: ev.Time, feat: feat}); err != nil {
				return err
			}
		}
		if inCount > 0 {
			o.m.recordsIn.WithLabelValues(lastTopic).Add(inCount)
		}
		o.st.In.Add(int64(len(recs)))
		if tx, ok := o.src.(Transactional); ok && len(recs) > 0 {
			if err := o.endTransaction(work, tx); err != nil {
				return err
			}
		}
		if err != nil || ctx.Err() != nil {
			return nil
		}
	}
}

// endTransaction waits until every output of the fetched records is acknowledged, then
// commits them with their offsets in one transaction.
func (o *Operator) endTransaction(ctx context.Context, tx Transactional) error {
	drain, cancel := context.WithTimeout(ctx, o.cfg.DrainTimeout)
	defer cancel()
	if err := o.waitDrained(drain); err != nil {
		return fmt.Errorf("exactly-once: %w", err)
	}
	committed, err := tx.EndBatch(ctx)
	if err != nil {
		return err
	}
	if committed {
		o.st.Transactions.Add(1)
	} else {
		o.st.Aborted.Add(1)
	}
	return nil
}

func (o *Operator) deadLetter(r *Record, h handle, cause error) {
	var de *DecodeError
	class := ClassInvalidJSON
	if errors.As(cause, &de) {
		class = de.Class
	}
	o.tr.add(h, 1)
	out := &Output{
		Topic: o.cfg.Topics.DeadLetter, Key: r.Key, Value: r.Value, Source: r,
		Headers: []Header{
			{Key: record.HeaderErrorClass, Value: []byte(class)},
			{Key: record.HeaderErrorMessage, Value: []byte(cause.Error())},
			{Key: record.HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: record.HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
			{Key: record.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		},
	}
	o.sink.Produce(out, func(err error) {
		if err != nil {
			o.fail(fmt.Errorf("writing dead letter for %s/%d@%d to %s: %w", r.Topic, r.Partition, r.Offset, out.Topic, err))
			return
		}
		o.m.deadLetters.WithLabelValues(string(class)).Inc()
		o.out[out.Topic].Inc()
		o.st.DeadLettered.Add(1)
		o.tr.release(h)
	})
	o.tr.release(h)
}

// flush scores one batch and routes every row; it runs on the batcher's goroutine.
func (o *Operator) flush(ctx context.Context, b scorer.Batch[row]) error {
	n, f := len(b.Rows), o.nFeat
	if cap(o.mat) < n*f {
		o.mat = make([]float32, n*f, o.batch.Config().MaxSize*f)
		o.scores = make([]float32, o.batch.Config().MaxSize)
	}
	mat := o.mat[:n*f]
	for i := range b.Rows {
		copy(mat[i*f:(i+1)*f], b.Rows[i].feat)
	}
	start := time.Now()
	o.m.queueWait.Observe(start.Sub(b.Oldest).Seconds())
	var err error
	o.raw, err = o.cfg.Model.Score(mat, n, o.scores, o.raw)
	if err != nil {
		return fmt.Errorf("scoring a batch of %d: %w", n, err)
	}
	o.m.inference.Observe(time.Since(start).Seconds())
	o.m.batchSize.Observe(float64(n))
	o.m.batches.WithLabelValues(b.Reason.String()).Inc()
	if o.st.Batches.Add(1)%64 == 1 {
		perRow, perCall, _ := o.batch.CostModel()
		o.m.costPerRow.Set(perRow.Seconds())
		o.m.costPerCall.Set(perCall.Seconds())
		o.m.arrivalRate.Set(o.batch.ArrivalRate())
	}
	o.st.Rows.Add(int64(n))

	now := o.cfg.Now()
	// One allocation per batch for the values and one for the prediction outputs, not one
	// each per row: they stay alive until the last of the batch's records is acknowledged.
	perRow := 192 + len(o.cfg.Topics.Predictions)
	if o.cfg.IncludeFeatures {
		perRow += 12 * f
	}
	vals := make([]byte, 0, n*perRow)
	outs := make([]Output, n)
	for i := range b.Rows {
		r := &b.Rows[i]
		rec := r.rec
		score := o.scores[i]
		var feat []float32
		if o.cfg.IncludeFeatures {
			feat = r.feat
		}
		start := len(vals)
		vals = o.enc.append(vals, rec.Topic, rec.Partition, rec.Offset, rec.Key, score, r.eventTime, now, feat)
		val := vals[start:len(vals):len(vals)]
		alert := o.cfg.Topics.Alerts != "" && score >= o.cfg.Threshold
		count := int32(1)
		if alert {
			count++
		}
		o.tr.add(r.h, count)
		outs[i] = Output{Topic: o.cfg.Topics.Predictions, Key: rec.Key, Value: val, Source: rec, Features: r.feat, EventTime: r.eventTime}
		o.produce(&outs[i], r.h, &o.st.Predictions)
		if alert {
			o.produce(&Output{Topic: o.cfg.Topics.Alerts, Key: rec.Key, Value: val, Source: rec, Features: r.feat, EventTime: r.eventTime}, r.h, &o.st.Alerts)
		}
		o.tr.release(r.h)
	}
	return nil
}

func (o *Operator) produce(out *Output, h handle, counter interface{ Add(int64) int64 }) {
	o.sink.Produce(out, func(err error) {
		if err != nil {
			o.fail(fmt.Errorf("writing to %s for %s/%d@%d: %w", out.Topic, out.Source.Topic, out.Source.Partition, out.Source.Offset, err))
			return
		}
		o.out[out.Topic].Inc()
		counter.Add(1)
		o.tr.release(h)
	})
}

func (o *Operator) commitLoop(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(o.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
			if err := o.commitNow(ctx, nil); err != nil {
				o.log.Warn("committing offsets; will retry", zap.Error(err))
			}
		}
	}
}

// commitNow commits the watermarks that moved, for the partitions in only (nil: all).
func (o *Operator) commitNow(ctx context.Context, only map[TopicPartition]bool) error {
	c, ok := o.src.(Committer)
	if !ok {
		return nil
	}
	o.commit.Lock()
	defer o.commit.Unlock()
	offs := o.tr.uncommitted(only)
	if len(offs) == 0 {
		return nil
	}
	if err := c.Commit(ctx, offs); err != nil {
		o.tr.rollback(offs)
		return err
	}
	return nil
}

// revoked runs inside the group's rebalance: it waits (bounded) until the records already
// fetched from the revoked partitions are done, commits them, and forgets the partitions.
func (o *Operator) revoked(ctx context.Context, tps []TopicPartition) {
	if len(tps) == 0 {
		return
	}
	wait, cancel := context.WithTimeout(ctx, o.cfg.DrainTimeout)
	defer cancel()
	only := make(map[TopicPartition]bool, len(tps))
	for _, tp := range tps {
		only[tp] = true
		select {
		case <-o.tr.drained(tp):
		case <-wait.Done():
			o.log.Warn("revoked partition still has records in flight; their outputs may be repeated by the next owner",
				zap.String("topic", tp.Topic), zap.Int32("partition", tp.Partition))
		case <-o.failed:
		}
	}
	if o.state != nil {
		o.state.invalidate(tps)
	}
	if err := o.commitNow(wait, only); err != nil {
		o.log.Warn("committing revoked partitions", zap.Error(err))
	}
	o.tr.forget(tps)
}

func (o *Operator) lost(tps []TopicPartition) {
	if o.state != nil {
		o.state.invalidate(tps)
	}
	o.tr.forget(tps)
}
