package drivers

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// The model lifecycle is internal/lifecycle's; what is here reads the config and opens
// the registry for it.

// followRegistry opens the registry and reads the activation log to its end, so the job
// starts with the versions it makes live (lifecycle.NewFollower); the job's Run follows it
// from there. It returns nil when registry.enabled is off.
func followRegistry(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, fallback *scorer.Model, reg prometheus.Registerer, log *zap.Logger) (*lifecycle.Follower, error) {
	ro, ok := c.RegistryOptions()
	if !ok {
		return nil, nil
	}
	kc.Metrics = nil // the registry's client is not the job's consumer or producer
	r, err := openRegistry(ctx, kc, ro)
	if err != nil {
		return nil, fmt.Errorf("%w (or set registry.enabled: false to score with model.path only)", err)
	}
	lo := c.LiveModels(fallback)
	lo.Registry, lo.Logger = reg, log
	return lifecycle.NewFollower(ctx, r, lo, kc.Failover())
}

// replayModels chooses the versions of a backfill: whatIf (NAME@VERSION) for every event;
// else, with the registry on, the version that was live for each event, from the switch
// markers of live scoring; else the config's model (lifecycle.Replay). It returns a
// description for the summary and a function that closes what it loaded.
func replayModels(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, fallback *scorer.Model, whatIf string, log *zap.Logger) (pipeline.Models, string, func(), error) {
	ro, ok := c.RegistryOptions()
	if !ok && whatIf == "" {
		return nil, fallback.Version(), func() {}, nil
	}
	kc.Metrics = nil
	r, err := openRegistry(ctx, kc, ro)
	if err != nil {
		return nil, "", nil, err
	}
	defer r.Close()
	return lifecycle.Replay(ctx, r, c.Topics.Input, c.LiveModels(fallback), whatIf, log)
}

// openRegistry opens the model registry, waiting out a failover.
func openRegistry(ctx context.Context, kc topics.ClientConfig, ro topics.RegistryOptions) (*topics.Registry, error) {
	var r *topics.Registry
	err := topics.WithinFailover(ctx, kc, "opening the model registry", func(ctx context.Context) (err error) {
		r, err = topics.OpenRegistry(ctx, kc, ro)
		return err
	})
	return r, err
}
