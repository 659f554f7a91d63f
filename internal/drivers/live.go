// Package drivers builds the jobs that run the one operator: live scoring (run), a bounded
// replay into a topic or a file (backfill), a training-set export (export, features) and
// the self-contained demo. Only the source and the sink change between them; everything
// from the config to the typed options comes from internal/config. cmd/streamscore and the
// integration tests call the same builders, so what is tested is what runs.
package drivers

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
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
// Its methods other than Run are safe for concurrent use.
type Live struct {
	op     *pipeline.Operator
	model  *scorer.Model
	follow *follower // nil: registry off
	api    *api      // nil: http.address unset
	stats  *pipeline.Stats
	closer []func()
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
	kc.Metrics = topics.NewClientMetrics(d.Registry)
	if err := EnsureTopics(ctx, c, kc); err != nil {
		return nil, err
	}
	model, err := scorer.Open(c.ModelOptions())
	if err != nil {
		return nil, err
	}
	l := &Live{model: model, stats: d.Stats, closer: []func(){func() { model.Close() }}}
	src, sink, err := l.openSourceAndSink(c, kc, d.Registry)
	if err != nil {
		l.close()
		return nil, err
	}
	oc := c.Operator(model)
	oc.Metrics = pipeline.NewMetrics(d.Registry)
	oc.Stats = d.Stats
	oc.Logger = d.Logger
	oc.MeasureLatency = true
	closeState, err := stateSources(ctx, c, kc, &oc, false)
	if err != nil {
		l.close()
		return nil, err
	}
	l.closer = append(l.closer, closeState)
	if l.follow, err = followRegistry(ctx, c, kc, model, d.Registry, d.Logger); err != nil {
		l.close()
		return nil, err
	}
	if l.follow != nil {
		l.follow.wire(&oc)
		l.closer = append(l.closer, l.follow.close)
	}
	if l.op, err = pipeline.New(oc, src, sink); err != nil {
		l.close()
		return nil, err
	}
	if l.api, err = newAPI(ctx, c, kc, l.op, src, d); err != nil {
		l.close()
		return nil, err
	}
	if l.api != nil {
		l.closer = append(l.closer, l.api.close)
	}
	return l, nil
}

// openSourceAndSink opens the group source and the producer, or for exactly-once the
// transactional session that is both, and puts their Close first in l.closer.
func (l *Live) openSourceAndSink(c *config.Compiled, kc topics.ClientConfig, reg prometheus.Registerer) (pipeline.Source, pipeline.Sink, error) {
	if c.ExactlyOnce() {
		to, err := c.TransactOptions(reg)
		if err != nil {
			return nil, nil, err
		}
		ts, err := topics.NewTransactSession(kc, to)
		if err != nil {
			return nil, nil, err
		}
		l.closer = append([]func(){ts.Close}, l.closer...)
		return ts, ts, nil
	}
	gs, err := topics.NewGroupSource(kc, c.GroupOptions(reg))
	if err != nil {
		return nil, nil, err
	}
	p, err := topics.NewProducer(kc, c.ProducerOptions())
	if err != nil {
		gs.Close()
		return nil, nil, err
	}
	// the source closes first: leaving the group runs the revoke handler, which finds
	// nothing left to commit; then the producer, then the model
	l.closer = append([]func(){gs.Close, p.Close}, l.closer...)
	return gs, p, nil
}

// Model is the live version the job scores with now.
func (l *Live) Model() *scorer.Model {
	if l.follow != nil {
		m, _ := l.follow.live.Current()
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
// error (an output that could not be written; nothing past it is committed). It closes
// the job's clients and model before it returns.
func (l *Live) Run(ctx context.Context) error {
	var err error
	if l.api != nil {
		err = l.api.run(ctx, l.op.Run)
	} else {
		err = l.op.Run(ctx)
	}
	l.close()
	return err
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
// labels topic as the feedback table (bounded for backfills and exports). The returned
// function closes them.
func stateSources(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, oc *pipeline.Config, bounded bool) (func(), error) {
	if !c.Features.HasWindows() {
		return func() {}, nil
	}
	oc.History = topics.NewHistory(kc)
	if !c.Features.UsesFeedback() {
		return func() {}, nil
	}
	fb, err := topics.NewFeedback(ctx, kc, c.FeedbackOptions(bounded))
	if err != nil {
		return nil, err
	}
	oc.Feedback = fb
	return fb.Close, nil
}
