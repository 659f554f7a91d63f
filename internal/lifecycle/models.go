package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// Store is what the lifecycle needs of the registry; *topics.Registry implements it.
type Store interface {
	PutModel(ctx context.Context, meta topics.ModelMeta, raw []byte) (topics.ModelMeta, error)
	Snapshot(ctx context.Context) (topics.Snapshot, error)
	Append(ctx context.Context, a topics.Activation) (topics.Activation, error)
}

// PushOptions describe a push.
type PushOptions struct {
	Name string
	// Width is the feature spec's width: the model must take exactly this many inputs.
	Width int
	// Golden are sample feature rows, row-major (ideally the training script's golden
	// rows), on which the model must give finite scores in [0, 1] whatever the batch
	// size; synthetic rows are added when there are few.
	Golden []float32
	By     string
	// Manifest is the bundle's optional manifest, a JSON object stored with the version.
	Manifest json.RawMessage
	// Model selects the input, output and score column as the live scorer will; only
	// those fields are used (the model always loads on the CPU to validate).
	Model scorer.Options
}

// PushFile reads path and pushes it with Push.
func PushFile(ctx context.Context, st Store, path string, o PushOptions) (topics.ModelMeta, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return topics.ModelMeta{}, fmt.Errorf("pushing model %s: %w", o.Name, err)
	}
	return Push(ctx, st, raw, o)
}

// Push loads raw in ONNX Runtime, validates it against the feature spec's width and the
// golden rows (scorer.Validate), and only then stores it. A model that fails changes
// nothing in the registry, and the error says what to do. Pushing a version that is
// already stored writes nothing and returns the stored record.
func Push(ctx context.Context, st Store, raw []byte, o PushOptions) (topics.ModelMeta, error) {
	fail := func(err error) (topics.ModelMeta, error) {
		return topics.ModelMeta{}, fmt.Errorf("pushing model %s: %w; nothing was stored", o.Name, err)
	}
	if err := topics.ValidModelName(o.Name); err != nil {
		return fail(err)
	}
	if o.Width <= 0 {
		return fail(fmt.Errorf("feature width %d: give the feature spec's width", o.Width))
	}
	m, err := scorer.OpenBytes(raw, scorer.Options{
		Name: o.Name, Device: scorer.CPU, Threads: 1,
		InputName: o.Model.InputName, OutputName: o.Model.OutputName, ScoreColumn: o.Model.ScoreColumn,
	})
	if err != nil {
		return fail(fmt.Errorf("it does not load in ONNX Runtime (export it again, as ONNX with a float input [N, F]): %w", err))
	}
	verr := scorer.Validate(m, o.Width, o.Golden)
	if err := m.Close(); err != nil && verr == nil {
		verr = fmt.Errorf("closing the validation session: %w", err)
	}
	if verr != nil {
		return fail(verr)
	}
	meta, err := st.PutModel(ctx, topics.ModelMeta{
		Name: o.Name, Width: o.Width, PushedBy: o.By, Manifest: o.Manifest,
	}, raw)
	if err != nil {
		return meta, fmt.Errorf("pushing model %s: %w", o.Name, err)
	}
	return meta, nil
}

// ErrUnknownVersion is an activation of a version the registry does not hold (or a prefix
// that matches several).
var ErrUnknownVersion = errors.New("unknown model version")

// Activate gives a stored version of name a role (live or shadow), from now on on every
// instance. version may be any unique prefix of a stored version; an unknown or ambiguous
// one is refused with the known versions listed. RoleShadowOff ends shadow scoring and
// takes no version.
func Activate(ctx context.Context, st Store, name, version string, role topics.Role, by string) (topics.Activation, error) {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return topics.Activation{}, fmt.Errorf("activating %s@%s: %w", name, version, err)
	}
	a := topics.Activation{Name: name, Role: role, By: by, Reason: topics.ReasonActivate}
	if role != topics.RoleShadowOff {
		if a.Version, err = resolve(snap.Models, name, version); err != nil {
			return topics.Activation{}, fmt.Errorf("activating %s: %w", name, err)
		}
	}
	a, err = st.Append(ctx, a)
	if err != nil {
		return a, fmt.Errorf("activating %s@%s as %s: %w", name, a.Version, role, err)
	}
	return a, nil
}

// resolve finds the one stored version of name that version is a prefix of.
func resolve(models []topics.ModelMeta, name, version string) (string, error) {
	var known, matches []string
	for _, m := range models {
		if m.Name != name {
			continue
		}
		known = append(known, m.Version)
		if version != "" && strings.HasPrefix(m.Version, version) {
			matches = append(matches, m.Version)
		}
	}
	switch {
	case len(matches) == 1:
		return matches[0], nil
	case len(known) == 0:
		return "", fmt.Errorf("%w %q: the registry holds no version of %s; push one first (streamscore model push FILE --name %s)",
			ErrUnknownVersion, version, name, name)
	case len(matches) > 1:
		return "", fmt.Errorf("%w: %q matches versions %s of %s; give more digits",
			ErrUnknownVersion, version, strings.Join(matches, ", "), name)
	}
	return "", fmt.Errorf("%w %q of %s: the registry holds %s; push the model first or pick one of those",
		ErrUnknownVersion, version, name, strings.Join(known, ", "))
}

// Rollback makes the live version before the current one live again: the one the
// current version replaced, and, rolled back again, the one before that. It is an error
// when there is none.
func Rollback(ctx context.Context, st Store, name, by string) (topics.Activation, error) {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return topics.Activation{}, fmt.Errorf("rolling back %s: %w", name, err)
	}
	s := State(snap.Activations)[name]
	prev, ok := s.PreviousLive()
	if !ok {
		cur := "no live version"
		if s.Live.Version != "" {
			cur = "only " + s.Live.Version + " was ever live"
		}
		return topics.Activation{}, fmt.Errorf("rolling back %s: no earlier live version to go back to (%s); activate a version instead", name, cur)
	}
	a, err := st.Append(ctx, topics.Activation{
		Name: name, Version: prev.Version, Role: topics.RoleLive, Reason: topics.ReasonRollback, By: by,
	})
	if err != nil {
		return a, fmt.Errorf("rolling back %s to %s: %w", name, prev.Version, err)
	}
	return a, nil
}

// ModelState is where the activation log leaves one model.
type ModelState struct {
	// Live is the activation that made the current live version live; its Version is
	// empty when none is.
	Live topics.Activation
	// Shadow is the activation of the current shadow version; Version empty: none.
	Shadow topics.Activation
	// LiveStack holds the live versions that Rollback goes back through, oldest first:
	// its last entry is Live. An activation pushes its version (unless already live); a
	// rollback pops the current one.
	LiveStack []topics.Activation
	// Rules are the segment rules that serve the model (the last serve activation's);
	// none: the live version serves.
	Rules []topics.Rule
	// Experiment is the running experiment; nil: none.
	Experiment *topics.Experiment
	// Experiments are the experiment activations (starts and stops), in log order.
	Experiments []topics.Activation
}

// PreviousLive is the version Rollback returns to.
func (s ModelState) PreviousLive() (topics.Activation, bool) {
	if len(s.LiveStack) < 2 {
		return topics.Activation{}, false
	}
	return s.LiveStack[len(s.LiveStack)-2], true
}

// State replays activations, in log order, into each model's state. It is the one
// definition of what the log means: instances, List and Rollback all use it.
func State(acts []topics.Activation) map[string]ModelState {
	out := map[string]ModelState{}
	for _, a := range acts {
		s := out[a.Name]
		switch a.Role {
		case topics.RoleLive:
			n := len(s.LiveStack)
			switch {
			case n > 0 && s.LiveStack[n-1].Version == a.Version:
				// Already live: nothing changes, and the stack keeps one entry per switch.
			case a.Reason == topics.ReasonRollback && n >= 2 && s.LiveStack[n-2].Version == a.Version:
				s.LiveStack = s.LiveStack[:n-1]
				s.Live = a
			default:
				// A rollback that does not match the stack (two writers raced) still makes
				// its version live; it is then recorded as an ordinary switch.
				s.LiveStack = append(s.LiveStack, a)
				s.Live = a
			}
		case topics.RoleShadow:
			if s.Shadow.Version != a.Version {
				s.Shadow = a
			}
		case topics.RoleShadowOff:
			s.Shadow = topics.Activation{}
		case topics.RoleServe:
			s.Rules = a.Rules
		case topics.RoleExperiment:
			s.Experiment = a.Experiment
			s.Experiments = append(s.Experiments, a)
		case topics.RoleExperimentStop:
			if s.Experiment != nil && a.Experiment != nil && s.Experiment.Name == a.Experiment.Name {
				s.Experiment = nil
			}
			s.Experiments = append(s.Experiments, a)
		}
		out[a.Name] = s
	}
	return out
}

// Entry is one stored version with its role now and its activation history.
type Entry struct {
	topics.ModelMeta
	// Role is live, shadow, or empty.
	Role topics.Role
	// Since is the activation that gave it Role (zero when Role is empty).
	Since topics.Activation
	// Activations are every activation of this version, in log order: when and by whom.
	Activations []topics.Activation
}

// List returns every stored version, by name then push time, with its role and history.
func List(ctx context.Context, st Store) ([]Entry, error) {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing models: %w", err)
	}
	states := State(snap.Activations)
	out := make([]Entry, 0, len(snap.Models))
	for _, m := range snap.Models {
		e := Entry{ModelMeta: m}
		s := states[m.Name]
		switch m.Version {
		case s.Live.Version:
			e.Role, e.Since = topics.RoleLive, s.Live
		case s.Shadow.Version:
			e.Role, e.Since = topics.RoleShadow, s.Shadow
		default:
			e.Role = routingRole(s, m.Version)
		}
		for _, a := range snap.Activations {
			if a.Name == m.Name && a.Version == m.Version {
				e.Activations = append(e.Activations, a)
			}
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].PushedAt.Before(out[j].PushedAt)
	})
	return out, nil
}

// routingRole is what the routing makes of a version that is neither live nor shadow:
// the running experiment's treatment, or a member of a rule's plan; "" when neither.
func routingRole(s ModelState, version string) topics.Role {
	if s.Experiment != nil && s.Experiment.Treatment == version {
		return topics.RoleExperiment
	}
	rt := routingOf(s)
	rt.Experiment = nil
	for _, v := range RoutingVersions(rt) {
		if v == version && v != "" {
			return topics.RoleServe
		}
	}
	return ""
}

// Resolve returns the stored version of name that version is a unique prefix of.
func Resolve(ctx context.Context, st Store, name, version string) (string, error) {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the model registry: %w", err)
	}
	return resolve(snap.Models, name, version)
}
