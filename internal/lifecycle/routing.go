package lifecycle

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// The arms of an experiment, as predictions name them.
const (
	ArmControl   = "control"
	ArmTreatment = "treatment"
)

// InTreatment reports whether the record key falls in an experiment's treatment arm: the
// FNV-1a 64-bit hash of name, a zero byte, salt, a zero byte and the key, modulo 10000,
// is below share × 100 (share in percent, to 0.01). It is a pure function of its
// arguments, so a key is in one arm on every instance, across restarts, rebalances and
// replays; the evaluation recomputes it.
func InTreatment(name, salt string, share float64, key []byte) bool {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write(key)
	return h.Sum64()%10000 < uint64(math.Round(share*100))
}

// Arm is InTreatment in words: ArmTreatment or ArmControl.
func Arm(e topics.Experiment, key []byte) string {
	if InTreatment(e.Name, e.Salt, e.Share, key) {
		return ArmTreatment
	}
	return ArmControl
}

// routeBuild is what building a pipeline.Route needs: the model name, its live version,
// a way to get any other version, the schema's field indexes for rules, and the cascade
// row counters (nil: not counted).
type routeBuild struct {
	name    string
	live    pipeline.Scorer
	version func(v string) (pipeline.Scorer, error)
	field   func(name string) int
	stages  *prometheus.CounterVec // by name, cascade, stage; nil: not counted
}

// build turns a routing into the Route the operator asks per record; nil when nothing
// but the live version serves. Its ID changes whenever the live version or the routing
// does, so that a switch marker records each change.
func (b routeBuild) build(rt topics.Routing) (*pipeline.Route, error) {
	if rt.Empty() {
		return nil, nil
	}
	spec, err := json.Marshal(rt)
	if err != nil {
		return nil, fmt.Errorf("routing of %s: %w", b.name, err)
	}
	r := &router{}
	if len(rt.Rules) == 0 {
		r.plans = []pipeline.Scorer{b.live}
	}
	for i, rule := range rt.Rules {
		s, err := b.plan(rule.Serve)
		if err != nil {
			return nil, fmt.Errorf("rule %d of %s: %w", i+1, b.name, err)
		}
		r.plans = append(r.plans, s)
		if rule.When != nil {
			idx := b.field(rule.When.Field)
			if idx < 0 {
				return nil, fmt.Errorf("rule %d of %s: the schema has no field %q", i+1, b.name, rule.When.Field)
			}
			r.conds = append(r.conds, cond{idx, rule.When.Op, rule.When.Value})
		}
	}
	if e := rt.Experiment; e != nil {
		t, err := b.version(e.Treatment)
		if err != nil {
			return nil, fmt.Errorf("treatment of experiment %s: %w", e.Name, err)
		}
		r.exp = e
		if e.When != nil {
			idx := b.field(e.When.Field)
			if idx < 0 {
				return nil, fmt.Errorf("experiment %s: the schema has no field %q", e.Name, e.When.Field)
			}
			r.segment = &cond{idx, e.When.Op, e.When.Value}
		}
		r.treatment = newArm(t, e.Name, ArmTreatment)
		for _, p := range r.plans {
			r.control = append(r.control, newArm(p, e.Name, ArmControl))
		}
	}
	route := &pipeline.Route{ID: b.live.Version() + "|" + string(spec), Spec: spec, Pick: r.pick}
	if rt.Experiment != nil && rt.Experiment.Mirror {
		route.Mirror = r.mirror
	}
	return route, nil
}

// plan is the scorer of one plan: a version, an ensemble or a cascade.
func (b routeBuild) plan(p topics.Plan) (pipeline.Scorer, error) {
	switch {
	case p.Ensemble != nil:
		ms := make([]pipeline.Scorer, len(p.Ensemble.Members))
		for i, v := range p.Ensemble.Members {
			var err error
			if ms[i], err = b.version(v); err != nil {
				return nil, err
			}
		}
		return pipeline.NewEnsemble(b.name, p.Ensemble.Combine, ms, p.Ensemble.Weights)
	case p.Cascade != nil:
		first, err := b.version(p.Cascade.First)
		if err != nil {
			return nil, err
		}
		second, err := b.version(p.Cascade.Second)
		if err != nil {
			return nil, err
		}
		var rows [2]prometheus.Counter
		c, err := pipeline.NewCascade(b.name, first, second, p.Cascade.Gate, rows)
		if err != nil || b.stages == nil {
			return c, err
		}
		rows[0] = b.stages.WithLabelValues(b.name, c.Version(), "1")
		rows[1] = b.stages.WithLabelValues(b.name, c.Version(), "2")
		return pipeline.NewCascade(b.name, first, second, p.Cascade.Gate, rows)
	case p.Version != "":
		return b.version(p.Version)
	}
	return b.live, nil
}

// router routes a record: the first rule whose condition holds (else the last) picks
// the plan; an experiment sends the treatment arm's keys to its treatment version. It
// does not change once built, so Pick is safe for concurrent use.
type router struct {
	plans     []pipeline.Scorer
	conds     []cond // conds[i] guards plans[i]; the last plan has none
	exp       *topics.Experiment
	segment   *cond // the experiment's segment; nil: every event
	treatment pipeline.Scorer
	control   []pipeline.Scorer // plans wrapped as the control arm
}

type cond struct {
	field int
	op    string
	value float64
}

func (c cond) holds(fields []float64) bool {
	if c.field >= len(fields) || math.IsNaN(fields[c.field]) {
		return false // an event without the field (or fields not kept) takes the default
	}
	x := fields[c.field]
	switch c.op {
	case ">=":
		return x >= c.value
	case ">":
		return x > c.value
	case "<=":
		return x <= c.value
	case "<":
		return x < c.value
	case "==":
		return x == c.value
	case "!=":
		return x != c.value
	}
	return false
}

func (r *router) plan(fields []float64) int {
	for i, c := range r.conds {
		if c.holds(fields) {
			return i
		}
	}
	return len(r.plans) - 1
}

func (r *router) pick(rec *pipeline.Record, fields []float64) pipeline.Scorer {
	i := r.plan(fields)
	if r.exp == nil || r.segment != nil && !r.segment.holds(fields) {
		return r.plans[i]
	}
	if InTreatment(r.exp.Name, r.exp.Salt, r.exp.Share, rec.Key) {
		return r.treatment
	}
	return r.control[i]
}

// mirror is the other arm's scorer of rec; nil outside the experiment's segment.
func (r *router) mirror(rec *pipeline.Record, fields []float64) pipeline.Scorer {
	if r.segment != nil && !r.segment.holds(fields) {
		return nil
	}
	if InTreatment(r.exp.Name, r.exp.Salt, r.exp.Share, rec.Key) {
		return r.control[r.plan(fields)]
	}
	return r.treatment
}

// arm is a scorer serving one arm of an experiment: its predictions name the arm.
type arm struct {
	pipeline.Scorer
	fields []byte
}

func newArm(s pipeline.Scorer, experiment, which string) *arm {
	b, _ := json.Marshal(pipeline.ExperimentArm{Name: experiment, Arm: which}) //nolint:errchkjson // two strings always marshal
	return &arm{Scorer: s, fields: append([]byte(`,"experiment":`), b...)}
}

// AppendFields implements pipeline.Annotated: the plan's own members, then the arm.
func (a *arm) AppendFields(dst []byte, i int) []byte {
	if an, ok := a.Scorer.(pipeline.Annotated); ok {
		dst = an.AppendFields(dst, i)
	}
	return append(dst, a.fields...)
}

// routingOf is the routing the state of a model leaves.
func routingOf(s ModelState) topics.Routing {
	return topics.Routing{Rules: s.Rules, Experiment: s.Experiment}
}
