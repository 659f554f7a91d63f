package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	var group, model, device, metricsAddr string
	var threshold float64
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Score the input topics live in a consumer group",
		Long: `run joins the consumer group on the input topics and writes one prediction per
event to the predictions topic, alerts for scores at or above the threshold, and dead
letters for events that cannot be scored. Offsets are committed only after every output of
a record and of all records before it in its partition is acknowledged. SIGINT or SIGTERM
stops fetching, drains in-flight batches, commits and exits 0.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			if fl.Changed("group") {
				c.Group = group
			}
			if fl.Changed("model") {
				c.Model.Path = model
			}
			if fl.Changed("device") {
				c.Model.Device = device
			}
			if fl.Changed("threshold") {
				c.Threshold = threshold
			}
			if fl.Changed("metrics-addr") {
				c.Metrics.Address = metricsAddr
			}
			// Live scoring only: batch jobs (backfill, export) read ahead in large fetches
			// and are faster left to the default GC pacing.
			if err := c.ApplyMemoryLimit(); err != nil {
				return err
			}
			cc, log, err := prepare(c, true)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			reg := prometheus.NewRegistry()
			ctx := cmd.Context()
			addr, err := serveMetrics(ctx, c.Metrics.Address, reg, log)
			if err != nil {
				return err
			}
			l, err := buildLive(ctx, cc, reg, log, &pipeline.Stats{})
			if err != nil {
				return err
			}
			log.Info("scoring", zap.Strings("input", c.Topics.Input), zap.String("group", c.Group),
				zap.String("model", l.model.Name()), zap.String("version", l.model.Version()),
				zap.String("device", string(l.model.Device())), zap.String("metrics", addr))
			err = l.run(ctx)
			if err == nil {
				log.Info("stopped cleanly")
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&group, "group", "", "consumer group id")
	fl.StringVar(&model, "model", "", "path of the .onnx model")
	fl.StringVar(&device, "device", "", "cpu or cuda")
	fl.Float64Var(&threshold, "threshold", 0, "alert threshold")
	fl.StringVar(&metricsAddr, "metrics-addr", "", "address of /metrics, e.g. :9100 (empty: off)")
	return cmd
}

// live is one wired live-scoring job.
type live struct {
	op     *pipeline.Operator
	model  *scorer.Model
	closer []func()
}

// buildLive checks the brokers and topics, loads the model and wires an operator between a
// consumer-group source and a producer sink, or, for exactly-once, a transactional session
// that is both.
func buildLive(ctx context.Context, c *config.Compiled, reg prometheus.Registerer, log *zap.Logger, stats *pipeline.Stats) (*live, error) {
	kc := c.Kafka
	kc.Logger = log
	kc.Metrics = topics.NewClientMetrics(reg)
	if err := ensureTopics(ctx, c, kc); err != nil {
		return nil, err
	}
	model, err := scorer.Open(c.ModelOptions())
	if err != nil {
		return nil, err
	}
	l := &live{model: model, closer: []func(){func() { model.Close() }}}
	var src pipeline.Source
	var sink pipeline.Sink
	if c.ExactlyOnce() {
		to, err := c.TransactOptions(reg)
		if err != nil {
			l.close()
			return nil, err
		}
		ts, err := topics.NewTransactSession(kc, to)
		if err != nil {
			l.close()
			return nil, err
		}
		l.closer = append([]func(){ts.Close}, l.closer...)
		src, sink = ts, ts
	} else {
		gs, err := topics.NewGroupSource(kc, c.GroupOptions(reg))
		if err != nil {
			l.close()
			return nil, err
		}
		p, err := topics.NewProducer(kc, c.ProducerOptions())
		if err != nil {
			gs.Close()
			l.close()
			return nil, err
		}
		// the source closes first: leaving the group runs the revoke handler, which finds
		// nothing left to commit; then the producer, then the model
		l.closer = append([]func(){gs.Close, p.Close}, l.closer...)
		src, sink = gs, p
	}
	oc := c.Operator(model)
	oc.Metrics = pipeline.NewMetrics(reg)
	oc.Stats = stats
	oc.Logger = log
	oc.MeasureLatency = true
	closeState, err := stateSources(ctx, c, kc, &oc, false)
	if err != nil {
		l.close()
		return nil, err
	}
	l.closer = append(l.closer, closeState)
	op, err := pipeline.New(oc, src, sink)
	if err != nil {
		l.close()
		return nil, err
	}
	l.op = op
	return l, nil
}

func (l *live) close() {
	for _, f := range l.closer {
		f()
	}
}

func (l *live) run(ctx context.Context) error {
	err := l.op.Run(ctx)
	l.close()
	return err
}

// ensureTopics checks the input topics exist and creates missing output topics when
// topics.create is on.
func ensureTopics(ctx context.Context, c *config.Compiled, kc topics.ClientConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm, err := topics.NewAdmin(kc)
	if err != nil {
		return err
	}
	defer adm.Close()
	parts, err := adm.Partitions(ctx, c.Topics.Input...)
	if err != nil {
		return fmt.Errorf("input topics at %v: %w", kc.Brokers, err)
	}
	if !c.Topics.Create {
		return nil
	}
	n := c.Topics.Partitions
	if n <= 0 {
		n = parts[c.Topics.Input[0]]
	}
	var specs []topics.TopicSpec
	for _, t := range []string{c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter} {
		specs = append(specs, topics.TopicSpec{Name: t, Partitions: n})
	}
	if c.Features.UsesFeedback() {
		specs = append(specs, topics.TopicSpec{Name: c.Topics.Labels, Partitions: n})
	}
	return adm.EnsureTopics(ctx, c.Topics.ReplicationFactor, specs...)
}
