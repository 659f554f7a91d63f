// Package drivers builds the jobs that run the one operator: live scoring (run), a bounded
// replay into a topic or a file (backfill), a training-set export (export, features) and
// the self-contained demo. Only the source and the sink change between them; everything
// from the config to the typed options comes from internal/config. cmd/streamscore and the
// integration tests call the same builders, so what is tested is what runs.
package drivers

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// LiveDeps are what a live job reports into. Nil fields get private defaults.
type LiveDeps struct {
	Registry prometheus.Registerer
	Logger   *zap.Logger
	Stats    *pipeline.Stats
}

// Live is one wired live-scoring job: a consumer-group source and a producer sink (or one
// transactional session that is both) around the operator. Create it with NewLive and
// call Run exactly once; Run closes the source, the sink and the model when it returns.
// When the operator stops on a transient failure (a broker down, a write that timed
// out), Run reopens the source and sink and starts a new operator from the committed
// offsets (supervise.go), for up to kafka.failover_timeout without progress. Its methods
// other than Run are safe for concurrent use.
type Live struct {
	c      *config.Compiled
	kc     topics.ClientConfig
	reg    prometheus.Registerer
	log    *zap.Logger
	oc     pipeline.Config // every operator's: metrics and models are shared by all of them
	model  *scorer.Model
	follow *lifecycle.Follower // nil: registry off; Run runs it
	api    *api                // nil: http.address unset
	stats  *pipeline.Stats
	sup    supervisor
	cur    atomic.Pointer[attempt] // the operator running now (or last)
	closer []func()                // after the last attempt: the model, the follower, the API
	arms   *armMetrics             // experiments' per-arm counts (experimentmetrics.go)
	// avroOut re-encodes predictions and alerts for output.format avro (nil: json).
	avroOut *avroOutputs
}

// attempt is one operator with its source, sink and state sources; a restart replaces it.
type attempt struct {
	op     *pipeline.Operator
	src    pipeline.Source
	closer []func()
}

// Run implements runner.
func (a *attempt) Run(ctx context.Context) error { return a.op.Run(ctx) }

// Close implements runner: the source first (leaving the group runs the revoke handler,
// which finds nothing left to commit), then the sink, then the state sources.
func (a *attempt) Close() {
	for _, f := range a.closer {
		f()
	}
	a.closer = nil
}

// NewLive checks the brokers and topics (creating missing output topics when
// topics.create is on), loads the model and wires the operator. ctx bounds the set-up only.
func NewLive(ctx context.Context, c *config.Compiled, d LiveDeps) (*Live, error) {
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Stats == nil {
		d.Stats = &pipeline.Stats{}
	}
	kc := c.Kafka
	kc.Logger = d.Logger
	// collectors are registered once per Live and shared by every operator it starts
	kc.Metrics = topics.NewClientMetrics(d.Registry)
	restarts, err := newRestartsCounter(d.Registry)
	if err != nil {
		return nil, err
	}
	if err := installValueFormat(ctx, c, d.Logger, d.Registry); err != nil {
		return nil, err
	}
	avroOut, err := newAvroOutputs(ctx, c, c.Topics.Predictions, c.Topics.Alerts)
	if err != nil {
		return nil, err
	}
	if err := EnsureTopics(ctx, c, kc); err != nil {
		return nil, err
	}
	model, err := scorer.Open(c.ModelOptions())
	if err != nil {
		return nil, err
	}
	l := &Live{c: c, kc: kc, reg: d.Registry, log: d.Logger, model: model, stats: d.Stats, closer: []func(){func() { model.Close() }}, avroOut: avroOut}
	l.sup = supervisor{
		failover: kc.Failover(), log: d.Logger, restarts: restarts, backoff: restartBackoff, now: time.Now,
		progress: func() int64 { return d.Stats.Done.Load() },
	}
	l.oc = c.Operator(model)
	l.oc.Metrics = pipeline.NewMetrics(d.Registry)
	l.oc.Stats = d.Stats
	l.oc.Logger = d.Logger
	l.oc.MeasureLatency = true
	l.arms = newArmMetrics(d.Registry, c)
	if l.follow, err = followRegistry(ctx, c, kc, model, d.Registry, d.Logger); err != nil {
		l.close()
		return nil, err
	}
	if l.follow != nil {
		l.follow.Wire(&l.oc)
		l.closer = append(l.closer, l.follow.Close)
	}
	first, err := l.open(ctx)
	if err != nil {
		l.close()
		return nil, err
	}
	l.cur.Store(first)
	if l.api, err = newAPI(ctx, c, kc, l, l.ready, d); err != nil {
		first.Close()
		l.close()
		return nil, err
	}
	if l.api != nil {
		l.closer = append(l.closer, l.api.close)
	}
	return l, nil
}

// open builds an operator with a new source and sink and new state sources.
func (l *Live) open(ctx context.Context) (*attempt, error) {
	a := &attempt{}
	src, sink, err := l.openSourceAndSink(a)
	if err != nil {
		return nil, err
	}
	sink = l.avroOut.wrap(sink) // output.format avro (wireformat_output.go)
	a.src = src
	oc := l.oc
	closeState, err := stateSources(ctx, l.c, l.kc, &oc, config.Unbounded)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.closer = append(a.closer, closeState)
	if oc.Feedback != nil {
		oc.Feedback = l.arms.feedbackSource(oc.Feedback)
	}
	if a.op, err = pipeline.New(oc, src, l.arms.sink(sink)); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// openSourceAndSink opens the group source and the producer, or for exactly-once the
// transactional session that is both, and puts their Close first in a.closer.
func (l *Live) openSourceAndSink(a *attempt) (pipeline.Source, pipeline.Sink, error) {
	if l.c.ExactlyOnce() {
		to, err := l.c.TransactOptions(l.reg)
		if err != nil {
			return nil, nil, err
		}
		ts, err := topics.NewTransactSession(l.kc, to)
		if err != nil {
			return nil, nil, err
		}
		a.closer = append(a.closer, ts.Close)
		return ts, ts, nil
	}
	gs, err := topics.NewGroupSource(l.kc, l.c.GroupOptions(l.reg))
	if err != nil {
		return nil, nil, err
	}
	p, err := topics.NewProducer(l.kc, l.c.ProducerOptions())
	if err != nil {
		gs.Close()
		return nil, nil, err
	}
	a.closer = append(a.closer, gs.Close, p.Close)
	return gs, p, nil
}

// Infer implements httpapi.Scorer on the operator running now.
func (l *Live) Infer(ctx context.Context, features []float32, n int) (pipeline.InferResult, error) {
	return l.cur.Load().op.Infer(ctx, features, n)
}

// Live implements httpapi.Scorer: the version that scores the next batch.
func (l *Live) Live() pipeline.Scorer { return l.cur.Load().op.Live() }

// NumFeatures implements httpapi.Scorer.
func (l *Live) NumFeatures() int { return l.cur.Load().op.NumFeatures() }

// ready says whether the operator running now is in its group and scoring.
func (l *Live) ready() bool {
	a := l.cur.Load()
	if j, ok := a.src.(interface{ Joined() bool }); ok && !j.Joined() {
		return false
	}
	return a.op.Scoring()
}

// Model is the live version the job scores with now.
func (l *Live) Model() *scorer.Model {
	if l.follow != nil {
		m, _ := l.follow.Current()
		return m
	}
	return l.model
}

// APIAddr is the address of the HTTP scoring API ("" when http.address is unset).
func (l *Live) APIAddr() string {
	if l.api == nil {
		return ""
	}
	return l.api.srv.Addr()
}

// Stats are the job's counters, updated while Run runs.
func (l *Live) Stats() *pipeline.Stats { return l.stats }

// Run scores until ctx is canceled (then drains, commits and returns nil) or a fatal
// error: a permanent one (an output that can never be written; nothing past it is
// committed), or transient failures that kafka.failover_timeout passed without progress.
// It closes the job's clients and model before it returns. With the registry on, it
// also follows the activation log, until the operator has drained.
func (l *Live) Run(ctx context.Context) error {
	defer l.close()
	if l.follow == nil {
		return l.runOperator(ctx)
	}
	// The follower stops after the operator, not with ctx: the batches drained after a
	// cancel are scored as the log says too.
	followCtx, stopFollowing := context.WithCancel(context.WithoutCancel(ctx))
	var g errgroup.Group
	g.Go(func() error {
		defer stopFollowing()
		return l.runOperator(ctx)
	})
	g.Go(func() error {
		// a registry that cannot be read leaves the job scoring with the versions it has
		if err := l.follow.Run(followCtx); err != nil {
			l.log.Error("following the model registry stopped", zap.Error(err))
		}
		return nil
	})
	return g.Wait()
}

// runOperator runs the operator, under the HTTP API when there is one.
func (l *Live) runOperator(ctx context.Context) error {
	if l.api != nil {
		return l.api.run(ctx, l.supervise)
	}
	return l.supervise(ctx)
}

// supervise runs the first operator and every one that replaces it after a failure.
func (l *Live) supervise(ctx context.Context) error {
	return l.sup.run(ctx, l.cur.Load(), l.reopen)
}

// reopen opens a new operator with new clients and makes it the one the API reaches.
func (l *Live) reopen(ctx context.Context) (runner, error) {
	a, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	l.cur.Store(a)
	return a, nil
}

func (l *Live) close() {
	for _, f := range l.closer {
		f()
	}
}

// EnsureTopics checks the input topics exist and creates missing output topics when
// topics.create is on. A broker that cannot answer yet is waited for, up to
// kafka.failover_timeout.
func EnsureTopics(ctx context.Context, c *config.Compiled, kc topics.ClientConfig) error {
	adm, err := topics.NewAdmin(kc)
	if err != nil {
		return err
	}
	defer adm.Close()
	var parts map[string]int32
	err = topics.WithinFailover(ctx, kc, fmt.Sprintf("input topics at %v", kc.Brokers), func(ctx context.Context) (err error) {
		parts, err = adm.Partitions(ctx, c.Topics.Input...)
		return err
	})
	if err != nil {
		return err
	}
	replication, specs := c.OutputTopics(parts[c.Topics.Input[0]])
	if len(specs) == 0 {
		return nil
	}
	return topics.WithinFailover(ctx, kc, "creating the output topics", func(ctx context.Context) error {
		return adm.EnsureTopics(ctx, replication, specs...)
	})
}

// stateSources wires what window features read: the input partitions' history, and the
// labels topic as the feedback table (config.Bounded for backfills and exports). The
// returned function closes them.
func stateSources(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, oc *pipeline.Config, e config.Extent) (func(), error) {
	closeTables, err := tableSources(ctx, c, kc, oc, e)
	if err != nil || !c.Features.HasWindows() {
		return closeTables, err
	}
	oc.History = topics.NewHistory(kc)
	if !c.Features.UsesFeedback() {
		return closeTables, nil
	}
	fb, err := topics.NewFeedback(ctx, kc, c.FeedbackOptions(e))
	if err != nil {
		closeTables()
		return nil, err
	}
	oc.Feedback = fb
	return func() { fb.Close(); closeTables() }, nil
}
