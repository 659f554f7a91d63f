package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/streamscore/streamscore/scorer"
)

// fixedScores scores row i of every call with the score its first feature indexes in
// scores; it records the rows it was asked to score.
type fixedScores struct {
	version string
	scores  []float32
	mu      sync.Mutex
	seen    [][]float32
}

func (f *fixedScores) Score(x []float32, n int, out, scratch []float32) ([]float32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i < n; i++ {
		row := x[i*2 : (i+1)*2]
		f.seen = append(f.seen, append([]float32(nil), row...))
		out[i] = f.scores[int(row[0])]
	}
	return scratch, nil
}
func (f *fixedScores) NumFeatures() int { return 2 }
func (f *fixedScores) Name() string     { return "fraud" }
func (f *fixedScores) Version() string  { return f.version }

// TestEnsembleArithmetic: mean and weighted mean accumulate in float64 in member order
// and round once; max is exact; the annotation carries every member's score.
func TestEnsembleArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 500
	a, b, c := &fixedScores{version: "a"}, &fixedScores{version: "b"}, &fixedScores{version: "c"}
	for i := 0; i < n; i++ {
		a.scores = append(a.scores, rng.Float32())
		b.scores = append(b.scores, rng.Float32())
		c.scores = append(c.scores, rng.Float32())
	}
	x := make([]float32, 2*n)
	for i := range n {
		x[2*i] = float32(i)
	}
	w := []float64{0.5, 0.3, 0.2}
	for _, combine := range []string{CombineMean, CombineMax, CombineWeighted} {
		var weights []float64
		if combine == CombineWeighted {
			weights = w
		}
		e, err := NewEnsemble("fraud", combine, []Scorer{a, b, c}, weights)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, n)
		if _, err := e.Score(x, n, out, nil); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			s := []float32{a.scores[i], b.scores[i], c.scores[i]}
			var want float32
			switch combine {
			case CombineMean:
				want = float32((float64(s[0]) + float64(s[1]) + float64(s[2])) / 3)
			case CombineMax:
				want = max(s[0], s[1], s[2])
			case CombineWeighted:
				want = float32((w[0]*float64(s[0]) + w[1]*float64(s[1]) + w[2]*float64(s[2])) / (w[0] + w[1] + w[2]))
			}
			if math.Float32bits(out[i]) != math.Float32bits(want) {
				t.Fatalf("%s row %d: %v, recomputed %v", combine, i, out[i], want)
			}
			var got struct{ Ensemble EnsembleScores }
			if err := json.Unmarshal(append(append([]byte("{"), e.AppendFields(nil, i)[1:]...), '}'), &got); err != nil {
				t.Fatal(err)
			}
			if got.Ensemble.Combine != combine || len(got.Ensemble.Members) != 3 || got.Ensemble.Members[1] != (MemberScore{"b", s[1]}) {
				t.Fatalf("%s row %d: annotation %+v", combine, i, got.Ensemble)
			}
		}
	}
	if e, _ := NewEnsemble("fraud", CombineMean, []Scorer{a, b}, nil); e.Version() != "mean(a,b)" {
		t.Fatalf("version %q", e.Version())
	}
}

func TestEnsembleAndCascadeRefuseBadInput(t *testing.T) {
	a := &fixedScores{version: "a"}
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"one member", func() error { _, err := NewEnsemble("f", CombineMean, []Scorer{a}, nil); return err }},
		{"unknown combiner", func() error { _, err := NewEnsemble("f", "median", []Scorer{a, a}, nil); return err }},
		{"weights count", func() error { _, err := NewEnsemble("f", CombineWeighted, []Scorer{a, a}, []float64{1}); return err }},
		{"negative weight", func() error {
			_, err := NewEnsemble("f", CombineWeighted, []Scorer{a, a}, []float64{1, -1})
			return err
		}},
		{"width", func() error {
			_, err := NewEnsemble("f", CombineMean, []Scorer{a, openLogistic(t, 0)}, nil)
			return err
		}},
		{"gate above 1", func() error { _, err := NewCascade("f", a, a, 1.5, [2]prometheus.Counter{}); return err }},
		{"gate NaN", func() error { _, err := NewCascade("f", a, a, math.NaN(), [2]prometheus.Counter{}); return err }},
	} {
		if err := tc.err(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestCascadeSecondStageSeesExactlyTheRowsAtOrAboveTheGate, with a score exactly at the
// gate among them, and counts rows per stage.
func TestCascadeSecondStageSeesExactlyTheRowsAtOrAboveTheGate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const n, gate = 1000, 0.75
	first, second := &fixedScores{version: "cheap"}, &fixedScores{version: "big"}
	for i := range n {
		first.scores = append(first.scores, rng.Float32())
		second.scores = append(second.scores, rng.Float32())
		if i == 10 {
			first.scores[i] = gate
		}
	}
	rows := [2]prometheus.Counter{prometheus.NewCounter(prometheus.CounterOpts{Name: "s1"}), prometheus.NewCounter(prometheus.CounterOpts{Name: "s2"})}
	c, err := NewCascade("fraud", first, second, gate, rows)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*n)
	for i := range n {
		x[2*i], x[2*i+1] = float32(i), float32(-i)
	}
	out := make([]float32, n)
	if _, err := c.Score(x, n, out, nil); err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := range n {
		if float64(first.scores[i]) >= gate {
			want = append(want, i)
		}
	}
	if len(second.seen) != len(want) {
		t.Fatalf("the second stage saw %d rows, %d are at or above the gate", len(second.seen), len(want))
	}
	for j, i := range want {
		if second.seen[j][0] != float32(i) || second.seen[j][1] != float32(-i) {
			t.Fatalf("second stage row %d is %v, want row %d", j, second.seen[j], i)
		}
	}
	for i := range n {
		var got struct{ Cascade CascadeStages }
		if err := json.Unmarshal(append(append([]byte("{"), c.AppendFields(nil, i)[1:]...), '}'), &got); err != nil {
			t.Fatal(err)
		}
		wantScore, stage := first.scores[i], 1
		if float64(first.scores[i]) >= gate {
			wantScore, stage = second.scores[i], 2
		}
		if out[i] != wantScore || got.Cascade.Stage != stage || len(got.Cascade.Scores) != stage || got.Cascade.Scores[0].Score != first.scores[i] {
			t.Fatalf("row %d: score %v stage %+v; want %v from stage %d", i, out[i], got.Cascade, wantScore, stage)
		}
	}
	if s1, s2 := testutil.ToFloat64(rows[0]), testutil.ToFloat64(rows[1]); s1 != float64(n-len(want)) || s2 != float64(len(want)) {
		t.Fatalf("stage counters %v and %v, want %d and %d", s1, s2, n-len(want), len(want))
	}
}

// segmentModels routes events by tx_amount: at or above 100 a cascade, below an ensemble.
type segmentModels struct {
	live  Scorer
	route *Route
}

func (s segmentModels) Choose() ModelChoice { return ModelChoice{Live: s.live, Route: s.route} }

// TestOperatorRoutesBySegmentAndCarriesTheID runs the operator on real models with a
// segment rule on tx_amount: every prediction carries the event's transaction_id as
// "id", the plan its segment picks, and a score equal to the recomputation from the
// members' own scores of its features.
func TestOperatorRoutesBySegmentAndCarriesTheID(t *testing.T) {
	s, fs := handbookSpec(t)
	big := openTestModel(t)
	small, err := scorer.Open(scorer.Options{Path: "../testdata/model/fraud-small.onnx", Name: "fraud"})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	ens, err := NewEnsemble("fraud", CombineMean, []Scorer{big, small}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const gate = 0.1
	cas, err := NewCascade("fraud", small, big, gate, [2]prometheus.Counter{})
	if err != nil {
		t.Fatal(err)
	}
	amount := s.FieldIndex("tx_amount")
	route := &Route{ID: "segments", Pick: func(_ *Record, f []float64) Scorer {
		if f[amount] >= 100 {
			return cas
		}
		return ens
	}}
	recs, _, labels := testRecordsWithLabels(3000, rand.New(rand.NewPCG(8, 8)))
	sink := &collectSink{}
	op, err := New(Config{
		Schema: s, Features: fs, Models: segmentModels{big, route}, Threshold: 0.5, Now: fakeClock(),
		Topics: Topics{Predictions: "preds", DeadLetter: "dlq"}, IDField: "transaction_id", RouteFields: true,
		IncludeFeatures: true, Batch: scorer.BatcherConfig{MaxSize: 64},
		Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(4, 4))},
	}, &memSource{recs: recs, rng: rand.New(rand.NewPCG(5, 5)), onCommit: func([]Offset) {}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	type event struct {
		ID     int64   `json:"transaction_id"`
		Amount float64 `json:"tx_amount"`
	}
	events := map[string]event{}
	for _, r := range recs {
		var e event
		if json.Unmarshal(r.Value, &e) == nil {
			events[r.Topic+"/"+strconv.Itoa(int(r.Partition))+"@"+strconv.FormatInt(r.Offset, 10)] = e
		}
	}
	one := func(m Scorer, x []float32) float32 {
		out := make([]float32, 1)
		if _, err := m.Score(x, 1, out, nil); err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	var n, cascaded, second int
	for _, o := range sink.outs {
		if o.topic != "preds" {
			continue
		}
		n++
		p := o.pred
		e, ok := events[p.Source.Topic+"/"+strconv.Itoa(int(p.Source.Partition))+"@"+strconv.FormatInt(p.Source.Offset, 10)]
		if !ok || string(p.ID) != strconv.FormatInt(e.ID, 10) {
			t.Fatalf("prediction of %+v has id %s, the event %d", p.Source, p.ID, e.ID)
		}
		sb, ss := one(big, p.Features), one(small, p.Features)
		if e.Amount >= 100 {
			cascaded++
			want := ss
			if float64(ss) >= gate {
				want, second = sb, second+1
			}
			if p.Cascade == nil || p.Score != want || p.Model.Version != cas.Version() || p.Cascade.Scores[0].Score != ss {
				t.Fatalf("cascaded prediction %+v: want score %v (cheap %v, big %v)", p, want, ss, sb)
			}
			continue
		}
		want := float32((float64(sb) + float64(ss)) / 2)
		if p.Ensemble == nil || p.Score != want || p.Ensemble.Members[0].Score != sb || p.Ensemble.Members[1].Score != ss {
			t.Fatalf("ensemble prediction %+v: want %v from %v and %v", p, want, sb, ss)
		}
	}
	if n < 2500 || cascaded == 0 || second == 0 || cascaded == n {
		t.Fatalf("%d predictions, %d cascaded, %d by the second stage: the test does not cover both segments and stages", n, cascaded, second)
	}
}

// TestOperatorMirrorsTheOtherArm: with Route.Mirror, every event's shadow prediction is
// scored by the scorer Mirror names (the other arm), not by one shadow for the batch.
func TestOperatorMirrorsTheOtherArm(t *testing.T) {
	s, fs := handbookSpec(t)
	a, b := openLogistic(t, -1), openLogistic(t, -2)
	inB := func(r *Record) bool { return len(r.Key) > 0 && r.Key[len(r.Key)-1]%5 == 0 }
	route := &Route{ID: "arms",
		Pick: func(r *Record, _ []float64) Scorer {
			if inB(r) {
				return b
			}
			return a
		},
		Mirror: func(r *Record, _ []float64) Scorer {
			if inB(r) {
				return a
			}
			return b
		}}
	recs, _, labels := testRecordsWithLabels(1500, rand.New(rand.NewPCG(9, 9)))
	sink := &collectSink{}
	op, err := New(Config{
		Schema: s, Features: fs, Models: segmentModels{a, route}, Threshold: 0.5, Now: fakeClock(),
		Topics: Topics{Predictions: "preds", DeadLetter: "dlq", Shadow: "shadow"}, IDField: "transaction_id",
		Batch:    scorer.BatcherConfig{MaxSize: 32},
		Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(4, 4))},
	}, &memSource{recs: recs, rng: rand.New(rand.NewPCG(5, 5)), onCommit: func([]Offset) {}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	type pos struct {
		p   int32
		off int64
	}
	live, shadow := map[pos]output{}, map[pos]output{}
	for _, o := range sink.outs {
		switch o.topic {
		case "preds":
			live[pos{o.pred.Source.Partition, o.pred.Source.Offset}] = o
		case "shadow":
			shadow[pos{o.pred.Source.Partition, o.pred.Source.Offset}] = o
		}
	}
	if len(live) < 1000 || len(shadow) != len(live) {
		t.Fatalf("%d predictions, %d mirrored", len(live), len(shadow))
	}
	versions := map[string]int{}
	for p, l := range live {
		m := shadow[p]
		if m.pred.Model.Version == l.pred.Model.Version || m.version != m.pred.Model.Version || string(m.pred.ID) != string(l.pred.ID) {
			t.Fatalf("%+v: scored by %s, mirrored by %s (header %s), ids %s and %s", p, l.pred.Model.Version, m.pred.Model.Version, m.version, l.pred.ID, m.pred.ID)
		}
		versions[l.pred.Model.Version]++
	}
	if len(versions) != 2 {
		t.Fatalf("versions %v: both arms should score", versions)
	}
}
