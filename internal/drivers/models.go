package drivers

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// follower is a live job's view of the model registry: the versions it scores with, and
// the goroutine that applies activations to them.
type follower struct {
	live *lifecycle.Live
	reg  *topics.Registry
	stop func() // ends the goroutine and waits for it
}

// followRegistry opens the registry, reads the activation log to its end (so the job
// starts with the versions it makes live) and keeps following it. It returns nil when
// registry.enabled is off.
func followRegistry(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, fallback *scorer.Model, reg prometheus.Registerer, log *zap.Logger) (*follower, error) {
	ro, ok := c.RegistryOptions()
	if !ok {
		return nil, nil
	}
	kc.Metrics = nil // the registry's client is not the job's consumer or producer
	var r *topics.Registry
	err := topics.WithinFailover(ctx, kc, "opening the model registry", func(ctx context.Context) (err error) {
		r, err = topics.OpenRegistry(ctx, kc, ro)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w (or set registry.enabled: false to score with model.path only)", err)
	}
	lo := c.LiveModels(fallback)
	lo.Registry, lo.Logger = reg, log
	live, err := lifecycle.NewLive(r, lo)
	if err != nil {
		r.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := live.Run(runCtx, ready); err != nil && runCtx.Err() == nil {
			log.Error("following the model registry stopped", zap.Error(err))
		}
	}()
	f := &follower{live: live, reg: r, stop: func() { cancel(); wg.Wait() }}
	// how long a starting instance waits to have read the activation log before it
	// scores: the follower retries its reads, so this outlasts a failover
	wait, cancelWait := context.WithTimeout(ctx, kc.Failover())
	defer cancelWait()
	select {
	case <-ready:
		return f, nil
	case <-wait.Done():
		f.close()
		if ctx.Err() == nil {
			return nil, fmt.Errorf("reading the activation log of %s: gave up after %v (kafka.failover_timeout): %w", r.Topic(), kc.Failover(), wait.Err())
		}
		return nil, fmt.Errorf("reading the activation log of %s: %w", r.Topic(), wait.Err())
	}
}

// close stops following and closes the versions loaded from the registry; call it after
// the operator has stopped.
func (f *follower) close() {
	f.stop()
	f.live.Close()
	f.reg.Close()
}

// wire makes the operator score with the followed versions and mark switches.
func (f *follower) wire(oc *pipeline.Config) {
	oc.Models = f.live
	withManifestReferences(oc.Drift, f.live)
	oc.Marks = &pipeline.Marks{Topic: f.reg.Topic(), Encode: lifecycle.MarkEncoder}
}

// replayModels chooses the versions of a backfill: whatIf (NAME@VERSION) for every event;
// else, with the registry on, the version that was live for each event, from the switch
// markers of live scoring; else the config's model. It returns a description for the
// summary and a function that closes what it loaded.
func replayModels(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, fallback *scorer.Model, whatIf string, log *zap.Logger) (pipeline.Models, string, func(), error) {
	ro, ok := c.RegistryOptions()
	if !ok && whatIf == "" {
		return nil, fallback.Version(), func() {}, nil
	}
	kc.Metrics = nil
	var r *topics.Registry
	err := topics.WithinFailover(ctx, kc, "opening the model registry", func(ctx context.Context) (err error) {
		r, err = topics.OpenRegistry(ctx, kc, ro)
		return err
	})
	if err != nil {
		return nil, "", nil, err
	}
	defer r.Close()
	lo := c.LiveModels(fallback)
	if whatIf != "" {
		return whatIfModel(ctx, r, lo, whatIf)
	}
	marks, err := r.Marks(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	h, err := lifecycle.NewHistory(ctx, r, marks, c.Topics.Input, lo)
	if err != nil {
		return nil, "", nil, err
	}
	desc := fallback.Version()
	if n := h.Versions(); n > 1 {
		desc = fmt.Sprintf("history (%d versions)", n)
	}
	log.Info("replaying with the versions live scoring used", zap.String("versions", desc))
	return h, desc, h.Close, nil
}

// whatIfModel loads NAME@VERSION to score every event of a replay with.
func whatIfModel(ctx context.Context, r *topics.Registry, lo lifecycle.LiveOptions, spec string) (pipeline.Models, string, func(), error) {
	name, version, ok := strings.Cut(spec, "@")
	if !ok || name == "" || version == "" {
		return nil, "", nil, fmt.Errorf("--model %q: want NAME@VERSION, e.g. %s@3f2a9c1e", spec, lo.Name)
	}
	if name != lo.Name {
		return nil, "", nil, fmt.Errorf("--model %q: the config scores model %s; a what-if replays one of its versions", spec, lo.Name)
	}
	full, err := lifecycle.Resolve(ctx, r, name, version)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--model: %w", err)
	}
	m, ref, err := lifecycle.Load(ctx, r, full, lo)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--model %s: %w", spec, err)
	}
	return fixedModel{m, ref}, m.Version(), func() { m.Close() }, nil
}

// fixedModel scores every batch with one version.
type fixedModel struct {
	m   *scorer.Model
	ref *drift.Reference
}

// Reference is the drift reference of the version's manifest.
func (f fixedModel) Reference(version string) *drift.Reference {
	if version != f.m.Version() {
		return nil
	}
	return f.ref
}

func (f fixedModel) Choose() pipeline.ModelChoice { return pipeline.ModelChoice{Live: f.m} }

// manifestReferences is what carries the drift references of registry versions.
type manifestReferences interface {
	Reference(version string) *drift.Reference
}

// withManifestReferences makes drift monitoring use the reference in a version's manifest
// (it was built for that version), and drift.reference for versions without one.
func withManifestReferences(d *pipeline.DriftConfig, refs manifestReferences) {
	if d == nil || refs == nil {
		return
	}
	own := d.Reference
	d.Reference = func(m pipeline.Scorer) *drift.Reference {
		if r := refs.Reference(m.Version()); r != nil {
			return r
		}
		return own(m)
	}
}
