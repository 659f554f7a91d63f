package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/streamscore/streamscore/internal/onnxtest"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// TestInTreatmentIsStickyAndHoldsItsShare: the arm is a pure function of (name, salt,
// key): the same on every call, the share of keys it gives is the share asked for, and
// another salt or name draws other keys.
func TestInTreatmentIsStickyAndHoldsItsShare(t *testing.T) {
	const keys = 20000
	in, moved := 0, 0
	for i := range keys {
		k := []byte(fmt.Sprint(i))
		a := InTreatment("exp1", "", 20, k)
		for range 3 {
			if InTreatment("exp1", "", 20, append([]byte(nil), k...)) != a {
				t.Fatalf("key %s changed arms", k)
			}
		}
		if a {
			in++
		}
		if a != InTreatment("exp1", "pepper", 20, k) {
			moved++
		}
	}
	if share := float64(in) / keys; math.Abs(share-0.20) > 0.01 {
		t.Fatalf("treatment holds %.4f of %d keys, want 0.20 ± 0.01", share, keys)
	}
	if moved < keys/10 {
		t.Fatalf("another salt moved only %d of %d keys", moved, keys)
	}
	if InTreatment("x", "", 0, []byte("1")) || !InTreatment("x", "", 100, []byte("1")) {
		t.Fatal("share 0 or 100 is not none or all")
	}
	if Arm(topics.Experiment{Name: "exp1", Share: 20}, []byte("7")) != map[bool]string{true: ArmTreatment, false: ArmControl}[InTreatment("exp1", "", 20, []byte("7"))] {
		t.Fatal("Arm disagrees with InTreatment")
	}
}

func testSchema(t *testing.T) *pipeline.Schema {
	t.Helper()
	s := &pipeline.Schema{Fields: []pipeline.Field{
		{Name: "transaction_id", Type: pipeline.TypeInt}, {Name: "tx_amount", Type: pipeline.TypeFloat},
		{Name: "channel", Type: pipeline.TypeString},
	}}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	return s
}

// referenceOfNames is a manifest whose drift reference describes features names.
func referenceOfNames(t *testing.T, names ...string) json.RawMessage {
	t.Helper()
	r := drift.Reference{Model: "fraud", Rows: 1, Score: drift.Hist{Name: "score", Edges: []float64{0.5}, Counts: []int64{1, 0}}}
	for _, n := range names {
		r.Features = append(r.Features, drift.Hist{Name: n, Edges: []float64{0}, Counts: []int64{1, 0}})
	}
	ref, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := json.Marshal(Manifest{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRoutingCommandsRefuseBadInput: every bad experiment or serving request is refused
// with a message naming what to fix, and nothing is written to the registry.
func TestRoutingCommandsRefuseBadInput(t *testing.T) {
	ctx, reg := registry(t)
	push := func(raw []byte, manifest json.RawMessage) string {
		meta, err := Push(ctx, reg, raw, PushOptions{Name: "fraud", Width: widthOf(t, raw), By: "t", Manifest: manifest})
		if err != nil {
			t.Fatal(err)
		}
		return meta.Version
	}
	v0, v1, v2 := push(logistic(0), referenceOfNames(t, "a", "b", "c")), push(logistic(1), nil), push(logistic(2), referenceOfNames(t, "a", "b", "c"))
	wide := push(onnxtest.Logistic(4, []float32{1, 1, 1, 1}, 0), nil)
	otherNames := push(logistic(3), referenceOfNames(t, "a", "b", "z"))
	schema := testSchema(t)
	o := RoutingOptions{Schema: schema, By: "t"}
	exp := func(name, treatment string, share float64) ExperimentSpec {
		return ExperimentSpec{Model: "fraud", Experiment: topics.Experiment{Name: name, Treatment: treatment, Share: share}}
	}
	rules := func(specs ...string) []topics.Rule {
		var out []topics.Rule
		for _, s := range specs {
			r, err := ParseRule(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	end := func() int64 {
		s, err := reg.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.End
	}
	refused := func(what string, err error, says string) {
		t.Helper()
		if err == nil || !errors.Is(err, ErrRouting) || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v; want a refusal saying %q", what, err, says)
		}
	}
	before := end()
	_, err := StartExperiment(ctx, reg, exp("e1", v1, 20), o)
	refused("no live version", err, "activate one first")
	if end() != before {
		t.Fatal("a refused start wrote to the registry")
	}
	if _, err := Activate(ctx, reg, "fraud", v0, topics.RoleLive, "t"); err != nil {
		t.Fatal(err)
	}
	before = end()
	for _, tc := range []struct {
		what string
		err  error
		says string
	}{
		{"share 0", second(StartExperiment(ctx, reg, exp("e1", v1, 0), o)), "strictly between 0 and 100"},
		{"share 100", second(StartExperiment(ctx, reg, exp("e1", v1, 100), o)), "strictly between 0 and 100"},
		{"share NaN", second(StartExperiment(ctx, reg, exp("e1", v1, math.NaN()), o)), "strictly between 0 and 100"},
		{"unknown version", second(StartExperiment(ctx, reg, exp("e1", "ffffffff", 20), o)), "push the model first"},
		{"treatment is the control", second(StartExperiment(ctx, reg, exp("e1", v0, 20), o)), "is the live version"},
		{"treatment of another width", second(StartExperiment(ctx, reg, exp("e1", wide, 20), o)), "differ in width"},
		{"bad name", second(StartExperiment(ctx, reg, exp("e/1", v1, 20), o)), "experiment name"},
		{"over max_loaded_bytes", second(StartExperiment(ctx, reg, exp("e1", v1, 20), RoutingOptions{MaxLoadedBytes: 10})), "model.max_loaded_bytes 10"},
		{"segment on a field the schema lacks", second(StartExperiment(ctx, reg, ExperimentSpec{Model: "fraud", Experiment: topics.Experiment{Name: "e1", Treatment: v1, Share: 20, When: &topics.Condition{Field: "amount", Op: ">=", Value: 1}}}, o)), `no field "amount"`},
		{"stop what does not run", second(StopExperiment(ctx, reg, "nope", false, "t")), "no experiment runs"},
		{"members of different widths", second(Serve(ctx, reg, "fraud", rules("mean("+v0+","+wide+")"), o)), "differ in width"},
		{"members of different features", second(Serve(ctx, reg, "fraud", rules("mean("+v2+","+otherNames+")"), o)), "other features"},
		{"unknown member", second(Serve(ctx, reg, "fraud", rules("mean("+v0+",ffffffff)"), o)), "push the model first"},
		{"gate above 1", second(Serve(ctx, reg, "fraud", rules("cascade("+v0+">=1.5:"+v1+")"), o)), "gate 1.5"},
		{"gate below 0", second(Serve(ctx, reg, "fraud", rules("cascade("+v0+">=-0.1:"+v1+")"), o)), "gate -0.1"},
		{"rule on a field the schema lacks", second(Serve(ctx, reg, "fraud", rules("amount >= 1000 => "+v1, v0), o)), `no field "amount"`},
		{"rule on a string field", second(Serve(ctx, reg, "fraud", rules("channel >= 1 => "+v1, v0), o)), "rules compare int or float"},
		{"unknown operator", second(Serve(ctx, reg, "fraud", rules("tx_amount ~ 1 => "+v1, v0), o)), "operator"},
		{"no default rule", second(Serve(ctx, reg, "fraud", rules("tx_amount >= 1 => "+v1), o)), "default"},
		{"one member", second(Serve(ctx, reg, "fraud", rules("mean("+v1+")"), o)), "at least two members"},
		{"weights of a mean", second(Serve(ctx, reg, "fraud", []topics.Rule{{Serve: topics.Plan{Ensemble: &topics.Ensemble{Combine: "mean", Members: []string{v0, v1}, Weights: []float64{1, 2}}}}}, o)), "takes no weights"},
		{"negative weight", second(Serve(ctx, reg, "fraud", rules("weighted("+v0+":1,"+v1+":-1)"), o)), "positive"},
	} {
		refused(tc.what, tc.err, tc.says)
	}
	if end() != before {
		t.Fatal("a refused command wrote to the registry")
	}
	for _, bad := range []string{"median(a,b)", "cascade(a:b)", "weighted(a,b)", "tx_amount >= x => a", " => a", "a b"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("rule %q parsed", bad)
		}
	}

	if _, err := StartExperiment(ctx, reg, exp("e1", v1[:5], 20), o); err != nil {
		t.Fatal(err)
	}
	before = end()
	refused("a second experiment", second(StartExperiment(ctx, reg, exp("e2", v2, 20), o)), "already runs experiment e1")
	if end() != before {
		t.Fatal("a refused second experiment wrote to the registry")
	}
	if _, err := StopExperiment(ctx, reg, "e1", true, "t"); err != nil {
		t.Fatal(err)
	}
	refused("a name used before", second(StartExperiment(ctx, reg, exp("e1", v2, 20), o)), "name this one differently")
	es, err := Experiments(ctx, reg)
	if err != nil || len(es) != 1 || es[0].Stopped == nil || es[0].Control != v0 || es[0].Treatment != v1 {
		t.Fatalf("experiments %+v, %v", es, err)
	}
	if s := State(mustActs(t, reg))["fraud"]; s.Live.Version != v1 || s.Experiment != nil {
		t.Fatalf("after stop --promote: live %s, experiment %+v; want %s live and none", s.Live.Version, s.Experiment, v1)
	}
}

func second[T any](_ T, err error) error { return err }

func mustActs(t *testing.T, reg *topics.Registry) []topics.Activation {
	t.Helper()
	acts, err := reg.Activations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return acts
}

func widthOf(t *testing.T, raw []byte) int {
	t.Helper()
	m, err := scorer.OpenBytes(raw, scorer.Options{Name: "w", Device: scorer.CPU, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.NumFeatures()
}

// TestReplayRoutesAsLiveDid: an instance following the log routes by the experiment and
// the segment rules; a History built from a switch marker carrying that routing gives
// every record the same arm, version and score.
func TestReplayRoutesAsLiveDid(t *testing.T) {
	ctx, reg := registry(t)
	var vs []string
	for _, b := range []float32{0, 1, 2} {
		meta, err := Push(ctx, reg, logistic(b), PushOptions{Name: "fraud", Width: 3, By: "t"})
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, meta.Version)
	}
	schema := testSchema(t)
	o := RoutingOptions{Schema: schema, By: "t"}
	if _, err := Activate(ctx, reg, "fraud", vs[0], topics.RoleLive, "t"); err != nil {
		t.Fatal(err)
	}
	rules := []topics.Rule{}
	for _, s := range []string{"tx_amount >= 100 => cascade(" + vs[1] + ">=0.6:" + vs[0] + ")", "mean(" + vs[0] + "," + vs[1] + ")"} {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	if _, err := Serve(ctx, reg, "fraud", rules, o); err != nil {
		t.Fatal(err)
	}
	if _, err := StartExperiment(ctx, reg, ExperimentSpec{Model: "fraud", Experiment: topics.Experiment{Name: "exp", Treatment: vs[2], Share: 30, Mirror: true}}, o); err != nil {
		t.Fatal(err)
	}
	cpu := scorer.Options{Name: "fraud", Device: scorer.CPU, Threads: 1}
	fallback, err := scorer.OpenBytes(logistic(9), cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer fallback.Close()
	lo := LiveOptions{Name: "fraud", Width: 3, Model: cpu, Fallback: fallback, Schema: schema}
	f, err := NewFollower(ctx, reg, lo, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer f.live.Close()
	choice := f.live.Choose()
	if choice.Route == nil || choice.Route.Mirror == nil || choice.Live.Version() != vs[0] {
		t.Fatalf("the follower does not route: %+v", choice)
	}
	_, val, err := MarkEncoder("in", 0, 0, "fraud", choice.Live.Version(), choice.Route.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var mk topics.Mark
	if err := json.Unmarshal(val, &mk); err != nil {
		t.Fatal(err)
	}
	mk.Topic, mk.Partition, mk.Offset = "in", 0, 0
	h, err := NewHistory(ctx, reg, []topics.Mark{mk}, []string{"in"}, lo)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	replay := h.Choose()
	rng := rand.New(rand.NewPCG(1, 1))
	arms := map[string]int{}
	for i := range 2000 {
		rec := &pipeline.Record{Topic: "in", Partition: 0, Offset: int64(i), Key: []byte(fmt.Sprint(rng.IntN(500)))}
		fields := []float64{float64(i), rng.Float64() * 200, math.NaN()}
		x := []float32{rng.Float32(), rng.Float32(), rng.Float32()}
		live, again := choice.Route.Pick(rec, fields), replay.Route.Pick(rec, fields)
		ls, la := scoreAnnotated(t, live, x)
		rs, ra := scoreAnnotated(t, again, x)
		if live.Version() != again.Version() || ls != rs || la != ra {
			t.Fatalf("record %d: live %s %v %s, replay %s %v %s", i, live.Version(), ls, la, again.Version(), rs, ra)
		}
		arm := ArmControl
		if InTreatment("exp", "", 30, rec.Key) {
			arm = ArmTreatment
			if live.Version() != vs[2] {
				t.Fatalf("a treatment key scored by %s", live.Version())
			}
		}
		if !strings.Contains(la, `"experiment":{"name":"exp","arm":"`+arm+`"}`) {
			t.Fatalf("record %d: annotation %s, want arm %s", i, la, arm)
		}
		if arm == ArmControl && fields[1] >= 100 != strings.Contains(la, `"cascade"`) {
			t.Fatalf("record %d of amount %v: annotation %s", i, fields[1], la)
		}
		if m := choice.Route.Mirror(rec, fields); (arm == ArmTreatment) == (m.Version() == vs[2]) {
			t.Fatalf("record %d in %s mirrored by %s", i, arm, m.Version())
		}
		arms[arm]++
	}
	if arms[ArmControl] == 0 || arms[ArmTreatment] == 0 {
		t.Fatalf("arms %v", arms)
	}
}

func scoreAnnotated(t *testing.T, m pipeline.Scorer, x []float32) (float32, string) {
	t.Helper()
	out := make([]float32, 1)
	if _, err := m.Score(x, 1, out, nil); err != nil {
		t.Fatal(err)
	}
	var ann []byte
	if a, ok := m.(pipeline.Annotated); ok {
		ann = a.AppendFields(nil, 0)
	}
	return out[0], string(ann)
}

// TestInstanceReportsAndBoundsLoadedBytes: an instance reports the bytes of each version
// it serves with, and keeps its routing when a new one would hold more than
// MaxLoadedBytes.
func TestInstanceReportsAndBoundsLoadedBytes(t *testing.T) {
	ctx, reg := registry(t)
	var vs []string
	bytes := map[string]int64{}
	for _, b := range []float32{0, 1, 2} {
		meta, err := Push(ctx, reg, logistic(b), PushOptions{Name: "fraud", Width: 3, By: "t"})
		if err != nil {
			t.Fatal(err)
		}
		vs, bytes[meta.Version] = append(vs, meta.Version), meta.Bytes
	}
	o := RoutingOptions{Schema: testSchema(t), By: "t"}
	if _, err := Activate(ctx, reg, "fraud", vs[0], topics.RoleLive, "t"); err != nil {
		t.Fatal(err)
	}
	r, err := ParseRule("mean(" + vs[0] + "," + vs[1] + ")")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(ctx, reg, "fraud", []topics.Rule{r}, o); err != nil {
		t.Fatal(err)
	}
	if _, err := StartExperiment(ctx, reg, ExperimentSpec{Model: "fraud", Experiment: topics.Experiment{Name: "e", Treatment: vs[2], Share: 10}}, o); err != nil {
		t.Fatal(err)
	}
	cpu := scorer.Options{Name: "fraud", Device: scorer.CPU, Threads: 1}
	fallback, err := scorer.OpenBytes(logistic(9), cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer fallback.Close()
	prom := prometheus.NewRegistry()
	lo := LiveOptions{Name: "fraud", Width: 3, Model: cpu, Fallback: fallback, Schema: o.Schema, Registry: prom,
		MaxLoadedBytes: bytes[vs[0]] + bytes[vs[1]]} // the ensemble fits, the treatment on top does not
	f, err := NewFollower(ctx, reg, lo, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer f.live.Close()
	route := f.live.Choose().Route
	if route == nil || strings.Contains(string(route.Spec), `"experiment"`) || !strings.Contains(string(route.Spec), `"ensemble"`) {
		t.Fatalf("routing %v: want the ensemble kept and the experiment refused", route)
	}
	if n := testutil.ToFloat64(f.live.failed); n == 0 {
		t.Fatal("the refused routing was not counted")
	}
	for _, v := range vs[:2] {
		if got := testutil.ToFloat64(f.live.rt.held.WithLabelValues("fraud", v)); got != float64(bytes[v]) {
			t.Fatalf("streamscore_model_loaded_bytes of %s: %v, want %d", v, got, bytes[v])
		}
	}
}

// TestExperimentOnASegment: an experiment with a segment routes only the events its
// condition holds for; the others are served, and mirrored, as without it.
func TestExperimentOnASegment(t *testing.T) {
	cpu := scorer.Options{Name: "fraud", Device: scorer.CPU, Threads: 1}
	open := func(bias float32) *scorer.Model {
		m, err := scorer.OpenBytes(logistic(bias), cpu)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	live, treat := open(0), open(1)
	schema := testSchema(t)
	b := routeBuild{name: "fraud", live: live, field: schema.FieldIndex,
		version: func(string) (pipeline.Scorer, error) { return treat, nil }}
	route, err := b.build(topics.Routing{Experiment: &topics.Experiment{Name: "big", Treatment: treat.Version(), Share: 50, Mirror: true,
		When: &topics.Condition{Field: "tx_amount", Op: ">=", Value: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	in, out := 0, 0
	for i := range 400 {
		rec := &pipeline.Record{Key: []byte(fmt.Sprint(i))}
		amount := float64(i % 200)
		fields := []float64{float64(i), amount, math.NaN()}
		m := route.Pick(rec, fields)
		_, routed := m.(*arm)
		if routed != (amount >= 100) {
			t.Fatalf("event of amount %v: routed by the experiment %v", amount, routed)
		}
		if mirror := route.Mirror(rec, fields); (mirror != nil) != routed {
			t.Fatalf("event of amount %v: mirror %v", amount, mirror)
		}
		if routed {
			in++
		} else {
			out++
			if m != pipeline.Scorer(live) {
				t.Fatalf("event of amount %v outside the segment scored by %s", amount, m.Version())
			}
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("%d events in the segment, %d out", in, out)
	}
}
