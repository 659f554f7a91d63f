package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// prepare validates c for a command that talks to Kafka (and loads the model, with
// needModel) and builds its logger.
func prepare(c *config.Config, needModel bool) (*config.Compiled, *zap.Logger, error) {
	cc, err := c.Validate(config.Needs{Kafka: true, Model: needModel})
	if err != nil {
		return nil, nil, err
	}
	log, err := c.Log.NewLogger()
	if err != nil {
		return nil, nil, err
	}
	return cc, log, nil
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
	fb, err := topics.NewFeedback(ctx, kc, topics.FeedbackOptions{Topic: c.Topics.Labels, Bounded: bounded})
	if err != nil {
		return nil, err
	}
	oc.Feedback = fb
	return fb.Close, nil
}
