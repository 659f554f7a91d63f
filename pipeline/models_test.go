package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/streamscore/streamscore/internal/onnxtest"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
)

// openLogistic is a second model of the handbook's width, with another version.
func openLogistic(t testing.TB, bias float32) *scorer.Model {
	t.Helper()
	w := make([]float32, 15)
	for i := range w {
		w[i] = 0.01 * float32(i+1)
	}
	m, err := scorer.OpenBytes(onnxtest.Logistic(15, w, bias), scorer.Options{Name: "fraud"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// swapModels scores with cur until the test swaps it, as a registry follower would.
type swapModels struct {
	mu          sync.Mutex
	cur, shadow Scorer
}

func (s *swapModels) Choose() ModelChoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ModelChoice{Live: s.cur, Shadow: s.shadow}
}

func (s *swapModels) set(m Scorer) {
	s.mu.Lock()
	s.cur = m
	s.mu.Unlock()
}

// output is one output as a sink saw it.
type output struct {
	topic   string
	pred    Prediction
	version string // the model.version header
	key     string
}

// collectSink keeps every output; onPrediction runs (outside its lock) after each one.
type collectSink struct {
	mu           sync.Mutex
	outs         []output
	onPrediction func(n int)
}

func (k *collectSink) Produce(out *Output, ack func(error)) {
	o := output{topic: out.Topic, version: string(record.HeaderValue(out.Headers, record.HeaderModelVersion)), key: string(out.Key)}
	if out.Topic == "preds" || out.Topic == "shadow" {
		if err := json.Unmarshal(out.Value, &o.pred); err != nil {
			ack(err)
			return
		}
	}
	k.mu.Lock()
	k.outs = append(k.outs, o)
	n := len(k.outs)
	k.mu.Unlock()
	if out.Topic == "preds" && k.onPrediction != nil {
		k.onPrediction(n)
	}
	ack(nil)
}

func (k *collectSink) Flush(context.Context) error { return nil }

func encodeMark(topic string, partition int32, offset int64, name, version string, _ []byte) ([]byte, []byte, error) {
	return []byte(fmt.Sprintf("mark/%s/%d/%d", topic, partition, offset)), []byte(name + "@" + version), nil
}

// fakeClock stamps each batch with its own scored_at, so that the predictions of one
// batch can be told apart from the next one's.
func fakeClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

// TestOperatorSwapsModelsBetweenBatches swaps the live version while the operator runs:
// no batch mixes versions, every output names the version that scored it in its JSON and
// its model.version header, each partition changes version once, and a switch marker
// stands at the first record each version scored in each partition.
func TestOperatorSwapsModelsBetweenBatches(t *testing.T) {
	s, fs := handbookSpec(t)
	a, b := openTestModel(t), openLogistic(t, -1)
	recs, _, labels := testRecordsWithLabels(6000, rand.New(rand.NewPCG(3, 3)))
	models := &swapModels{cur: a}
	sink := &collectSink{}
	var swapped atomic.Bool
	sink.onPrediction = func(n int) {
		if n >= 2000 && swapped.CompareAndSwap(false, true) {
			models.set(b)
		}
	}
	op, err := New(Config{
		Schema: s, Features: fs, Models: models, Threshold: 0.5, Now: fakeClock(),
		Topics:   Topics{Predictions: "preds", DeadLetter: "dlq"},
		Marks:    &Marks{Topic: "marks", Encode: encodeMark},
		Batch:    scorer.BatcherConfig{MaxSize: 64},
		Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(4, 4))},
	}, &memSource{recs: recs, rng: rand.New(rand.NewPCG(5, 5)), onCommit: func([]Offset) {}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	batchVersion := map[time.Time]string{}
	type pos struct {
		p   int32
		off int64
	}
	versionAt := map[pos]string{}
	perPartition := map[int32][]string{} // versions in offset order (the sink sees each partition in order)
	marks := map[pos]string{}
	for _, o := range sink.outs {
		switch o.topic {
		case "preds":
			v := o.pred.Model.Version
			if o.version != v {
				t.Fatalf("prediction of %d@%d: header says %q, JSON %q", o.pred.Source.Partition, o.pred.Source.Offset, o.version, v)
			}
			if prev, ok := batchVersion[o.pred.ScoredAt]; ok && prev != v {
				t.Fatalf("one batch scored with %s and %s", prev, v)
			}
			batchVersion[o.pred.ScoredAt] = v
			p := pos{o.pred.Source.Partition, o.pred.Source.Offset}
			versionAt[p] = v
			if l := perPartition[p.p]; len(l) == 0 || l[len(l)-1] != v {
				perPartition[p.p] = append(l, v)
			}
		case "marks":
			var mp pos
			if _, err := fmt.Sscanf(o.key, "mark/in/%d/%d", &mp.p, &mp.off); err != nil {
				t.Fatalf("marker key %q: %v", o.key, err)
			}
			marks[mp] = o.key
		case "dlq":
			if o.version != a.Version() && o.version != b.Version() {
				t.Fatalf("dead letter with model.version %q", o.version)
			}
		}
	}
	if !swapped.Load() {
		t.Fatal("the test never swapped the model")
	}
	for p, vs := range perPartition {
		if len(vs) > 2 || vs[0] != a.Version() || (len(vs) == 2 && vs[1] != b.Version()) {
			t.Fatalf("partition %d went through versions %v, want %s then %s", p, vs, a.Version(), b.Version())
		}
	}
	// A marker stands exactly where a partition's version changes (first record included).
	want := map[pos]bool{}
	last := map[int32]string{}
	for _, r := range recs {
		v, ok := versionAt[pos{r.Partition, r.Offset}]
		if !ok {
			continue // dead-lettered
		}
		if last[r.Partition] != v {
			want[pos{r.Partition, r.Offset}] = true
			last[r.Partition] = v
		}
	}
	if len(marks) != len(want) {
		t.Fatalf("%d markers, want %d (one per partition per version)", len(marks), len(want))
	}
	for p := range want {
		if _, ok := marks[p]; !ok {
			t.Fatalf("no marker at %d@%d, where the version changed", p.p, p.off)
		}
	}
}

// TestOperatorShadowScoresEveryRow: with a shadow, every prediction has a shadow twin on
// the shadow topic with the shadow's version and the shadow model's own score, and the
// disagreement counter matches a recount.
func TestOperatorShadowScoresEveryRow(t *testing.T) {
	s, fs := handbookSpec(t)
	live, shadow := openTestModel(t), openLogistic(t, 2)
	recs, _, labels := testRecordsWithLabels(3000, rand.New(rand.NewPCG(6, 6)))
	sink := &collectSink{}
	m := NewMetrics(nil)
	op, err := New(Config{
		Schema: s, Features: fs, Models: &swapModels{cur: live, shadow: shadow}, Threshold: 0.5, Metrics: m,
		Topics:          Topics{Predictions: "preds", DeadLetter: "dlq", Shadow: "shadow"},
		Batch:           scorer.BatcherConfig{MaxSize: 128},
		IncludeFeatures: true,
		Feedback:        &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(7, 7))},
	}, &memSource{recs: recs, rng: rand.New(rand.NewPCG(8, 8)), onCommit: func([]Offset) {}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	preds, shadows := map[string]Prediction{}, map[string]Prediction{}
	for _, o := range sink.outs {
		id := strconv.Itoa(int(o.pred.Source.Partition)) + "@" + strconv.FormatInt(o.pred.Source.Offset, 10)
		switch o.topic {
		case "preds":
			preds[id] = o.pred
		case "shadow":
			if o.version != shadow.Version() || o.pred.Model.Version != shadow.Version() {
				t.Fatalf("shadow prediction with version %q/%q, want %s", o.version, o.pred.Model.Version, shadow.Version())
			}
			shadows[id] = o.pred
		}
	}
	if len(preds) == 0 || len(shadows) != len(preds) {
		t.Fatalf("%d predictions, %d shadow predictions", len(preds), len(shadows))
	}
	flips := 0
	out := make([]float32, 1)
	for id, p := range preds {
		sp, ok := shadows[id]
		if !ok {
			t.Fatalf("no shadow prediction for %s", id)
		}
		if _, err := shadow.Score(p.Features, 1, out, nil); err != nil {
			t.Fatal(err)
		}
		if sp.Score != out[0] {
			t.Fatalf("%s: shadow score %v, the shadow model alone gives %v", id, sp.Score, out[0])
		}
		if (p.Score >= 0.5) != (sp.Score >= 0.5) {
			flips++
		}
	}
	if got := testCounterValue(t, m.shadowAlertFlips); got != float64(flips) || flips == 0 {
		t.Fatalf("alert disagreements counted %v, recounted %d (want equal and above 0)", got, flips)
	}
}

// TestOperatorScoresEachRecordWithItsVersion: a replay that picks the version per record
// gives each record exactly the score its version gives it alone.
func TestOperatorScoresEachRecordWithItsVersion(t *testing.T) {
	s, fs := handbookSpec(t)
	a, b := openTestModel(t), openLogistic(t, -1)
	recs, _, labels := testRecordsWithLabels(3000, rand.New(rand.NewPCG(9, 9)))
	pick := func(r *Record) Scorer {
		if (r.Offset/37)%2 == 0 {
			return a
		}
		return b
	}
	sink := &collectSink{}
	op, err := New(Config{
		Schema: s, Features: fs, Models: byRecord(pick), Threshold: 0.5,
		Topics:          Topics{Predictions: "preds", DeadLetter: "dlq"},
		Batch:           scorer.BatcherConfig{MaxSize: 256},
		IncludeFeatures: true,
		Feedback:        &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(10, 10))},
	}, &memSource{recs: recs, rng: rand.New(rand.NewPCG(11, 11)), onCommit: func([]Offset) {}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 1)
	n := 0
	for _, o := range sink.outs {
		if o.topic != "preds" {
			continue
		}
		n++
		m := pick(&Record{Offset: o.pred.Source.Offset})
		if o.pred.Model.Version != m.Version() || o.version != m.Version() {
			t.Fatalf("%d@%d scored by %s (header %s), want %s", o.pred.Source.Partition, o.pred.Source.Offset, o.pred.Model.Version, o.version, m.Version())
		}
		if _, err := m.Score(o.pred.Features, 1, out, nil); err != nil {
			t.Fatal(err)
		}
		if o.pred.Score != out[0] {
			t.Fatalf("%d@%d: %v, its version alone gives %v", o.pred.Source.Partition, o.pred.Source.Offset, o.pred.Score, out[0])
		}
	}
	if n < 2000 {
		t.Fatalf("only %d predictions", n)
	}
}

type byRecord func(*Record) Scorer

func (f byRecord) Choose() ModelChoice {
	return ModelChoice{Live: f(&Record{}), Route: &Route{ID: "by-record", Pick: func(r *Record, _ []float64) Scorer { return f(r) }}}
}

func testCounterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
