package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// ErrRouting is a routing change refused before anything was written: an unknown
// version, a share or gate out of range, a second experiment, members that do not fit
// together, a rule on a field the schema lacks.
var ErrRouting = errors.New("refused; nothing was written to the registry")

// RoutingOptions is what routing commands check against besides the registry: the event
// schema that rules name fields of, and the bound on the bytes of versions one routing
// holds (model.max_loaded_bytes; 0: none).
type RoutingOptions struct {
	Schema         *pipeline.Schema
	MaxLoadedBytes int64
	By             string
}

// ExperimentSpec is an experiment to start on a model.
type ExperimentSpec struct {
	Model string
	topics.Experiment
}

// StartExperiment checks e against the registry (the model has a live version and no
// running experiment, the name was never used, the treatment is a stored version of the
// live one's width, 0 < share < 100) and only then appends its start; the treatment may
// be a unique prefix of a version. Every instance applies it at a batch boundary.
func StartExperiment(ctx context.Context, st Store, e ExperimentSpec, o RoutingOptions) (topics.Activation, error) {
	fail := func(err error) (topics.Activation, error) {
		return topics.Activation{}, fmt.Errorf("starting experiment %s on %s: %w; %w", e.Name, e.Model, err, ErrRouting)
	}
	if err := topics.ValidModelName(e.Name); err != nil {
		return fail(fmt.Errorf("experiment name: %w", err))
	}
	if !(e.Share > 0 && e.Share < 100) {
		return fail(fmt.Errorf("--share %v: want a percentage of keys strictly between 0 and 100", e.Share))
	}
	if e.When != nil {
		if err := checkCondition(e.When, false, o.Schema); err != nil {
			return fail(fmt.Errorf("--segment: %w", err))
		}
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return fail(err)
	}
	states := State(snap.Activations)
	s := states[e.Model]
	if s.Live.Version == "" {
		return fail(fmt.Errorf("%s has no live version in the registry to be the control: activate one first (streamscore model activate %s@VERSION)", e.Model, e.Model))
	}
	if s.Experiment != nil {
		return fail(fmt.Errorf("%s already runs experiment %s: stop it first (streamscore experiment stop %s)", e.Model, s.Experiment.Name, s.Experiment.Name))
	}
	for name, ms := range states {
		for _, a := range ms.Experiments {
			if a.Experiment.Name == e.Name {
				return fail(fmt.Errorf("the name %s was used by an experiment on %s (started %s): name this one differently, so that its predictions cannot be mixed up with that one's", e.Name, name, a.At.Format("2006-01-02 15:04")))
			}
		}
	}
	if e.Treatment, err = resolve(snap.Models, e.Model, e.Treatment); err != nil {
		return fail(fmt.Errorf("--treatment: %w", err))
	}
	if e.Treatment == s.Live.Version {
		return fail(fmt.Errorf("--treatment %s is the live version, the control: pick another version", e.Treatment))
	}
	if err := fits(snap.Models, e.Model, s.Live.Version, e.Treatment); err != nil {
		return fail(err)
	}
	rt := routingOf(s)
	rt.Experiment = &e.Experiment
	if err := heldBytes(snap.Models, e.Model, s, rt, o.MaxLoadedBytes); err != nil {
		return fail(err)
	}
	a, err := st.Append(ctx, topics.Activation{Name: e.Model, Version: e.Treatment, Role: topics.RoleExperiment, By: o.By, Experiment: &e.Experiment})
	if err != nil {
		return a, fmt.Errorf("starting experiment %s on %s: %w", e.Name, e.Model, err)
	}
	return a, nil
}

// StopExperiment ends the running experiment name; promote first makes its treatment
// the live version (an activation like `model activate`), so no event is scored by the
// old control between the two.
func StopExperiment(ctx context.Context, st Store, name string, promote bool, by string) (topics.Activation, error) {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return topics.Activation{}, fmt.Errorf("stopping experiment %s: %w", name, err)
	}
	var running []string
	for model, s := range State(snap.Activations) {
		if s.Experiment == nil {
			continue
		}
		if s.Experiment.Name != name {
			running = append(running, s.Experiment.Name+" (on "+model+")")
			continue
		}
		e := *s.Experiment
		if promote {
			if _, err := st.Append(ctx, topics.Activation{Name: model, Version: e.Treatment, Role: topics.RoleLive, By: by}); err != nil {
				return topics.Activation{}, fmt.Errorf("stopping experiment %s: promoting %s@%s: %w", name, model, e.Treatment, err)
			}
		}
		a, err := st.Append(ctx, topics.Activation{Name: model, Version: e.Treatment, Role: topics.RoleExperimentStop, By: by, Experiment: &e})
		if err != nil {
			return a, fmt.Errorf("stopping experiment %s: %w", name, err)
		}
		return a, nil
	}
	slices.Sort(running)
	if len(running) == 0 {
		return topics.Activation{}, fmt.Errorf("stopping experiment %s: no experiment runs; %w", name, ErrRouting)
	}
	return topics.Activation{}, fmt.Errorf("stopping experiment %s: it does not run; running: %v; %w", name, running, ErrRouting)
}

// ExperimentEntry is one experiment as the log tells it.
type ExperimentEntry struct {
	Model   string
	Control string // the live version when it started
	topics.Experiment
	Started topics.Activation
	Stopped *topics.Activation // nil: running
}

// Experiments lists every experiment of the log, in the order they started.
func Experiments(ctx context.Context, st Store) ([]ExperimentEntry, error) {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing experiments: %w", err)
	}
	var out []ExperimentEntry
	open := map[string]int{}
	live := map[string]string{}
	for _, a := range snap.Activations {
		switch a.Role {
		case topics.RoleLive:
			live[a.Name] = a.Version
		case topics.RoleExperiment:
			open[a.Experiment.Name] = len(out)
			out = append(out, ExperimentEntry{Model: a.Name, Control: live[a.Name], Experiment: *a.Experiment, Started: a})
		case topics.RoleExperimentStop:
			if i, ok := open[a.Experiment.Name]; ok {
				stop := a
				out[i].Stopped = &stop
				delete(open, a.Experiment.Name)
			}
		}
	}
	return out, nil
}

// fits refuses versions of one model that do not take the same input: another width, or
// drift references (manifests) that name other features.
func fits(models []topics.ModelMeta, name string, versions ...string) error {
	var first topics.ModelMeta
	var firstNames []string
	for i, v := range versions {
		m, ok := meta(models, name, v)
		if !ok {
			return fmt.Errorf("%w %s of %s", ErrUnknownVersion, v, name)
		}
		ref, err := referenceOf(m)
		if err != nil {
			return err
		}
		var names []string
		if ref != nil {
			for _, h := range ref.Features {
				names = append(names, h.Name)
			}
		}
		if i == 0 {
			first, firstNames = m, names
			continue
		}
		if m.Width != first.Width {
			return fmt.Errorf("versions %s (%d inputs) and %s (%d inputs) differ in width: they cannot score the same rows", first.Version, first.Width, m.Version, m.Width)
		}
		if names != nil && firstNames != nil && !slices.Equal(names, firstNames) {
			return fmt.Errorf("versions %s and %s were trained on other features (%v, %v): they cannot score the same rows", first.Version, m.Version, firstNames, names)
		}
	}
	return nil
}

func meta(models []topics.ModelMeta, name, version string) (topics.ModelMeta, bool) {
	for _, m := range models {
		if m.Name == name && m.Version == version {
			return m, true
		}
	}
	return topics.ModelMeta{}, false
}

// heldBytes refuses a routing whose versions, with the live and shadow ones, hold more
// than max bytes (0: no bound), as an instance would.
func heldBytes(models []topics.ModelMeta, name string, s ModelState, rt topics.Routing, max int64) error {
	if max <= 0 {
		return nil
	}
	vs := append([]string{s.Live.Version, s.Shadow.Version}, RoutingVersions(rt)...)
	var total int64
	seen := map[string]bool{}
	for _, v := range vs {
		if m, ok := meta(models, name, v); ok && !seen[v] {
			seen[v] = true
			total += m.Bytes
		}
	}
	if total > max {
		return fmt.Errorf("it would hold %d versions of %d bytes in all, over model.max_loaded_bytes %d: serve fewer versions or raise it", len(seen), total, max)
	}
	return nil
}

// Serve makes rules serve model (its versions may be unique prefixes): each checked
// (known versions of one width and features, combiners, weights, gates in [0, 1], rule
// fields in the schema and numeric, the last rule alone without a condition) before
// anything is written. No rules: the live version alone serves again.
func Serve(ctx context.Context, st Store, model string, rules []topics.Rule, o RoutingOptions) (topics.Activation, error) {
	fail := func(err error) (topics.Activation, error) {
		return topics.Activation{}, fmt.Errorf("serving %s: %w; %w", model, err, ErrRouting)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return fail(err)
	}
	s := State(snap.Activations)[model]
	for i := range rules {
		if err := checkRule(snap.Models, model, &rules[i], i == len(rules)-1, s.Live.Version, o.Schema); err != nil {
			return fail(fmt.Errorf("rule %d: %w", i+1, err))
		}
	}
	rt := routingOf(s)
	rt.Rules = rules
	if err := heldBytes(snap.Models, model, s, rt, o.MaxLoadedBytes); err != nil {
		return fail(err)
	}
	a, err := st.Append(ctx, topics.Activation{Name: model, Version: s.Live.Version, Role: topics.RoleServe, By: o.By, Rules: rules})
	if err != nil {
		return a, fmt.Errorf("serving %s: %w", model, err)
	}
	return a, nil
}

// checkRule resolves the versions of r in place and checks it.
func checkRule(models []topics.ModelMeta, model string, r *topics.Rule, last bool, live string, schema *pipeline.Schema) error {
	if err := checkCondition(r.When, last, schema); err != nil {
		return err
	}
	p := &r.Serve
	var vs []*string
	switch {
	case p.Ensemble != nil:
		e := p.Ensemble
		if len(e.Members) < 2 {
			return errors.New("an ensemble needs at least two members")
		}
		switch e.Combine {
		case topics.CombineMean, topics.CombineMax:
			if len(e.Weights) > 0 {
				return fmt.Errorf("%s takes no weights: use weighted(VERSION:WEIGHT,...)", e.Combine)
			}
		case topics.CombineWeighted:
			if len(e.Weights) != len(e.Members) {
				return fmt.Errorf("a weighted ensemble needs one weight per member: %d members, %d weights", len(e.Members), len(e.Weights))
			}
			for _, w := range e.Weights {
				if !(w > 0) || math.IsInf(w, 0) {
					return fmt.Errorf("weight %v: want a positive number", w)
				}
			}
		default:
			return fmt.Errorf("combiner %q: want mean, max or weighted", e.Combine)
		}
		for i := range e.Members {
			vs = append(vs, &e.Members[i])
		}
	case p.Cascade != nil:
		c := p.Cascade
		if !(c.Gate >= 0 && c.Gate <= 1) {
			return fmt.Errorf("cascade gate %v: want a score in [0, 1]", c.Gate)
		}
		vs = append(vs, &c.First, &c.Second)
	case p.Version != "":
		vs = append(vs, &p.Version)
	default:
		return errors.New("serves nothing: give a version, an ensemble or a cascade")
	}
	var full []string
	for _, v := range vs {
		var err error
		if *v, err = resolve(models, model, *v); err != nil {
			return err
		}
		full = append(full, *v)
	}
	if live != "" {
		full = append([]string{live}, full...)
	}
	return fits(models, model, full...)
}

var ops = []string{">=", ">", "<=", "<", "==", "!="}

func checkCondition(c *topics.Condition, last bool, schema *pipeline.Schema) error {
	switch {
	case c == nil && !last:
		return errors.New("only the last rule, the default, may have no condition")
	case c == nil:
		return nil
	case last:
		return errors.New("the last rule is the default and takes no condition: add one without (e.g. --rule VERSION)")
	case !slices.Contains(ops, c.Op):
		return fmt.Errorf("operator %q: want one of %v", c.Op, ops)
	case math.IsNaN(c.Value) || math.IsInf(c.Value, 0):
		return fmt.Errorf("value %v: want a finite number", c.Value)
	case schema == nil:
		return fmt.Errorf("no schema to check field %q against", c.Field)
	}
	i := schema.FieldIndex(c.Field)
	if i < 0 {
		names := make([]string, len(schema.Fields))
		for j, f := range schema.Fields {
			names[j] = f.Name
		}
		return fmt.Errorf("the schema has no field %q (it has %v): compare one of those", c.Field, names)
	}
	if t := schema.Fields[i].Type; t != pipeline.TypeInt && t != pipeline.TypeFloat {
		return fmt.Errorf("field %q is a %s: rules compare int or float fields", c.Field, t)
	}
	return nil
}
