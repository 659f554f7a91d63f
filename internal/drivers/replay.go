package drivers

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// replayJob is what backfill and export share: the input topics replayed from a time (or
// the earliest offset) to the end offsets seen at start, through the operator into a sink,
// with window state rebuilt from the log and the labels topic read as a bounded table.
type replayJob struct {
	name     string // "backfill" or "export": says what was interrupted
	from     time.Time
	registry prometheus.Registerer // nil: a private one
	log      *zap.Logger
	progress io.Writer // a terminal gets a progress bar
}

// run replays into sink through an operator configured as oc (Schema, Features, Model,
// Topics and Batch set by the caller) and returns its counters and how long it ran.
func (j replayJob) run(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, oc pipeline.Config, sink pipeline.Sink) (*pipeline.Stats, time.Duration, error) {
	src, err := topics.NewReplay(ctx, kc, topics.ReplayOptions{Topics: c.Topics.Input, From: j.from})
	if err != nil {
		return nil, 0, err
	}
	defer src.Close()
	reg := j.registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	stats := &pipeline.Stats{}
	oc.Logger, oc.Metrics, oc.Stats = j.log, pipeline.NewMetrics(reg), stats
	closeState, err := stateSources(ctx, c, kc, &oc, config.Bounded)
	if err != nil {
		return nil, 0, err
	}
	defer closeState()
	op, err := pipeline.New(oc, src, sink)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	if err := runWithBar(j.progress, src.Total(), stats.Done.Load, func() error { return op.Run(ctx) }); err != nil {
		return nil, 0, err
	}
	if ctx.Err() != nil {
		return nil, 0, fmt.Errorf("%s interrupted after %d events: %w", j.name, stats.Done.Load(), ctx.Err())
	}
	return stats, time.Since(start), nil
}
