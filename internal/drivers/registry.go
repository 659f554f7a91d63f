package drivers

import (
	"context"
	"fmt"
	"io"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/topics"
)

// ModelRegistry is the model registry on Kafka as `streamscore model` works on it: push,
// activate, roll back, list. Every change is signed by lifecycle.CurrentUser. Not safe for
// concurrent use; Close releases its client.
type ModelRegistry struct {
	cc *config.Compiled
	st *topics.Registry
}

// OpenModelRegistry validates c for the registry (Kafka only) and opens it.
func OpenModelRegistry(ctx context.Context, c *config.Config) (*ModelRegistry, error) {
	cc, err := c.Validate(config.Needs{Kafka: true})
	if err != nil {
		return nil, err
	}
	st, err := cc.OpenRegistry(ctx)
	if err != nil {
		return nil, err
	}
	return &ModelRegistry{cc: cc, st: st}, nil
}

// Close closes the registry's client.
func (r *ModelRegistry) Close() { r.st.Close() }

// Topic is the registry topic.
func (r *ModelRegistry) Topic() string { return r.st.Topic() }

// PushModelOptions say what travels with a pushed model file.
type PushModelOptions struct {
	// Name is the model's name (default: model.name of the config).
	Name string
	// Golden and Reference are files as lifecycle.BundleOptions reads them.
	Golden, Reference string
	// Covers is lifecycle.BundleOptions.Covers: a covers file or a training export.
	Covers string
}

// Push validates the model file at path against the config's feature spec and model
// options and stores it with its golden rows and drift reference (lifecycle.PushBundle).
func (r *ModelRegistry) Push(ctx context.Context, path string, o PushModelOptions) (topics.ModelMeta, error) {
	name := o.Name
	if name == "" {
		name = r.cc.Model.Name
	}
	return lifecycle.PushBundle(ctx, r.st, path, lifecycle.BundleOptions{
		PushOptions: lifecycle.PushOptions{Name: name, Width: r.cc.Features.Len(), By: lifecycle.CurrentUser(), Model: r.cc.ModelOptions()},
		Golden:      o.Golden, Reference: o.Reference, Features: r.cc.Features.Names(), Covers: o.Covers,
	})
}

// ActivateAs is what an activation makes of a version.
type ActivateAs int

const (
	// AsLive makes the version live.
	AsLive ActivateAs = iota
	// AsShadow makes it the shadow, scored beside the live version.
	AsShadow
	// ShadowOff stops shadowing the model (the version may be empty).
	ShadowOff
)

// Activate makes name@version (a unique prefix of the version will do) live, the
// shadow, or stops the shadow, on every instance.
func (r *ModelRegistry) Activate(ctx context.Context, name, version string, as ActivateAs) (topics.Activation, error) {
	var role topics.Role
	switch as {
	case AsLive:
		role = topics.RoleLive
	case AsShadow:
		role = topics.RoleShadow
	case ShadowOff:
		role = topics.RoleShadowOff
	default:
		return topics.Activation{}, fmt.Errorf("activating %s@%s: unknown activation %d", name, version, as)
	}
	return lifecycle.Activate(ctx, r.st, name, version, role, lifecycle.CurrentUser())
}

// Rollback makes the previous live version of name live again.
func (r *ModelRegistry) Rollback(ctx context.Context, name string) (topics.Activation, error) {
	return lifecycle.Rollback(ctx, r.st, name, lifecycle.CurrentUser())
}

// PrintList writes the stored versions, their roles and their activations to w
// (lifecycle.PrintList).
func (r *ModelRegistry) PrintList(ctx context.Context, w io.Writer) error {
	entries, err := lifecycle.List(ctx, r.st)
	if err != nil {
		return err
	}
	return lifecycle.PrintList(w, entries)
}
