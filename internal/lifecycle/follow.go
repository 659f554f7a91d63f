package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// Follower is a live job's view of the model registry: the versions it scores with and
// the following of the activation log that changes them. NewFollower reads the log to its
// end, so a job starts with the versions the log made live; Run keeps applying
// activations, between two batches, until its ctx ends. Wire and Current are safe for
// concurrent use; call Run once, and Close after Run has returned and the operator has
// stopped.
type Follower struct {
	live *Live
	reg  *topics.Registry
}

// NewFollower follows reg for the model o names, taking reg over (Close closes it, and
// so does NewFollower when it fails). It
// returns once every activation written before it was called has been applied, or with
// an error when that took longer than catchUp (the follower retries failed reads, so
// catchUp, kafka.failover_timeout, outlasts a failover) or ctx ended.
func NewFollower(ctx context.Context, reg *topics.Registry, o LiveOptions, catchUp time.Duration) (*Follower, error) {
	live, err := NewLive(reg, o)
	if err != nil {
		reg.Close()
		return nil, err
	}
	f := &Follower{live: live, reg: reg}
	wait, cancel := context.WithTimeout(ctx, catchUp)
	defer cancel()
	if err := live.CatchUp(wait); err != nil {
		f.Close()
		if ctx.Err() == nil {
			return nil, fmt.Errorf("reading the activation log of %s: gave up after %v (kafka.failover_timeout): %w", reg.Topic(), catchUp, err)
		}
		return nil, fmt.Errorf("reading the activation log of %s: %w", reg.Topic(), err)
	}
	return f, nil
}

// Run applies activations as they are written until ctx ends, then returns nil; a read
// that fails is logged and retried, never returned.
func (f *Follower) Run(ctx context.Context) error {
	if err := f.live.Run(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("following the model registry: %w", err)
	}
	return nil
}

// Current returns the live version and the shadow (nil: none) that score the next batch.
func (f *Follower) Current() (live, shadow *scorer.Model) { return f.live.Current() }

// Wire makes the operator of oc score with the followed versions, use their manifests'
// drift references and write switch markers to the registry.
func (f *Follower) Wire(oc *pipeline.Config) {
	oc.Models = f.live
	WithManifestReferences(oc.Drift, f.live)
	oc.Marks = &pipeline.Marks{Topic: f.reg.Topic(), Encode: MarkEncoder}
}

// Close closes the versions loaded from the registry and the registry's client.
func (f *Follower) Close() {
	f.live.Close()
	f.reg.Close()
}

// ManifestReferences is what carries the drift references of registry versions: Live,
// History and a what-if replay's model.
type ManifestReferences interface {
	Reference(version string) *drift.Reference
}

// WithManifestReferences makes drift monitoring use the reference in a version's manifest
// (it was built for that version), and drift.reference for versions without one.
func WithManifestReferences(d *pipeline.DriftConfig, refs ManifestReferences) {
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
