package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/streamscore/streamscore/scorer"
)

// alertSink keeps every prediction's and alert's value.
type alertSink struct {
	mu            sync.Mutex
	preds, alerts map[srcID][]byte
}

func (k *alertSink) Produce(out *Output, ack func(error)) {
	id := srcID{TopicPartition{Topic: out.Source.Topic, Partition: out.Source.Partition}, out.Source.Offset}
	k.mu.Lock()
	switch out.Topic {
	case "preds":
		k.preds[id] = out.Value
	case "alerts":
		k.alerts[id] = out.Value
	}
	k.mu.Unlock()
	ack(nil)
}

func (k *alertSink) Flush(context.Context) error { return nil }

// hiddenScorer hides the model's Explainer, as a scorer that cannot explain.
type hiddenScorer struct{ Scorer }

func runForAlerts(t *testing.T, model Scorer, maxSize int, log *zap.Logger) *alertSink {
	t.Helper()
	s, fs := handbookSpec(t)
	recs, _, labels := testRecordsWithLabels(300, rand.New(rand.NewPCG(1, 2)))
	sink := &alertSink{preds: map[srcID][]byte{}, alerts: map[srcID][]byte{}}
	src := &memSource{recs: recs, rng: rand.New(rand.NewPCG(uint64(maxSize), 9)), onCommit: func([]Offset) {}}
	if log == nil {
		log = zap.NewNop()
	}
	op, err := New(Config{
		Schema: s, Features: fs, Model: model, Threshold: 0.5, Logger: log,
		Topics:   Topics{Predictions: "preds", Alerts: "alerts", DeadLetter: "dlq"},
		Batch:    scorer.BatcherConfig{MaxSize: maxSize},
		Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(uint64(maxSize), 3))},
		Explain:  ExplainConfig{Enabled: true, TopK: 5},
	}, src, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sink
}

// Every alert carries its reasons, which add up to its score with the base value and the
// other features' contribution; the prediction of an alerting row is the alert; rows
// below the threshold have none; and batching changes no byte of them.
func TestAlertsCarryReasons(t *testing.T) {
	model := openTestModel(t)
	if why := model.ExplainStatus(); why != "" {
		t.Fatalf("the shipped model with covers.json beside it does not explain: %s", why)
	}
	one := runForAlerts(t, model, 1, nil)
	t.Logf("%d alerts of %d predictions", len(one.alerts), len(one.preds))
	if len(one.alerts) < 20 {
		t.Fatalf("%d alerts: the test needs alerting rows", len(one.alerts))
	}
	for id, v := range one.alerts {
		var p Prediction
		if err := json.Unmarshal(v, &p); err != nil {
			t.Fatalf("%v: %v\n%s", id, err, v)
		}
		if p.BaseValue == nil || len(p.Reasons) != 5 {
			t.Fatalf("%v: alert without base_value or 5 reasons: %s", id, v)
		}
		sum := *p.BaseValue + p.OtherContribution
		for i, r := range p.Reasons {
			sum += r.Contribution
			if i > 0 && math.Abs(r.Contribution) > math.Abs(p.Reasons[i-1].Contribution) {
				t.Fatalf("%v: reasons not by |contribution|: %s", id, v)
			}
		}
		if d := math.Abs(sum - float64(p.Score)); d > 1e-5 {
			t.Fatalf("%v: base + contributions = %v, score %v (local accuracy)", id, sum, p.Score)
		}
		if string(one.preds[id]) != string(v) {
			t.Fatalf("%v: the alert differs from the prediction:\n%s\n%s", id, v, one.preds[id])
		}
	}
	for id, v := range one.preds {
		var p Prediction
		if err := json.Unmarshal(v, &p); err != nil {
			t.Fatal(err)
		}
		if _, alerted := one.alerts[id]; !alerted && (p.Reasons != nil || p.BaseValue != nil) {
			t.Fatalf("%v: a row below the threshold has reasons: %s", id, v)
		}
	}
	big := runForAlerts(t, model, 4096, nil)
	for id, v := range one.alerts {
		if reasonsOf(t, big.alerts[id]) != reasonsOf(t, v) {
			t.Fatalf("%v: reasons depend on batching:\n%s\n%s", id, v, big.alerts[id])
		}
	}
}

// reasonsOf is the value's text from base_value on: everything but scored_at.
func reasonsOf(t *testing.T, v []byte) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		t.Fatal(err)
	}
	return string(m["base_value"]) + string(m["reasons"]) + string(m["other_contribution"]) + string(m["score"])
}

// A scorer that cannot explain is served as before, and the log says why, once.
func TestAlertsWithoutExplainer(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	sink := runForAlerts(t, hiddenScorer{openTestModel(t)}, 256, zap.New(core))
	if len(sink.alerts) == 0 {
		t.Fatal("no alerts")
	}
	for id, v := range sink.alerts {
		var p Prediction
		if err := json.Unmarshal(v, &p); err != nil {
			t.Fatal(err)
		}
		if p.Reasons != nil {
			t.Fatalf("%v: reasons from a scorer that cannot explain: %s", id, v)
		}
	}
	if n := logs.FilterMessage("alerts of this model carry no reasons").Len(); n != 1 {
		t.Fatalf("said %d times that alerts carry no reasons, want once", n)
	}
}

// A record with HeaderExplain gets its reasons whatever its score (POST
// /v1/events?explain=true writes it); the others below the threshold do not.
func TestExplainHeaderAsksForReasons(t *testing.T) {
	s, fs := handbookSpec(t)
	recs, _, labels := testRecordsWithLabels(200, rand.New(rand.NewPCG(1, 2)))
	asked := map[srcID]bool{}
	for i := range recs {
		if i%10 == 0 {
			recs[i].Headers = append(recs[i].Headers, Header{Key: HeaderExplain, Value: []byte("true")})
			asked[srcID{TopicPartition{Topic: recs[i].Topic, Partition: recs[i].Partition}, recs[i].Offset}] = true
		}
	}
	sink := &alertSink{preds: map[srcID][]byte{}, alerts: map[srcID][]byte{}}
	op, err := New(Config{
		Schema: s, Features: fs, Model: openTestModel(t), Threshold: 2, Logger: zap.NewNop(),
		Topics:   Topics{Predictions: "preds", Alerts: "alerts", DeadLetter: "dlq"},
		Batch:    scorer.BatcherConfig{MaxSize: 64},
		Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(1, 3))},
		Explain:  ExplainConfig{Enabled: true, TopK: 3},
	}, &memSource{recs: recs, rng: rand.New(rand.NewPCG(1, 9)), onCommit: func([]Offset) {}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	explained := 0
	for id, v := range sink.preds {
		var p Prediction
		if err := json.Unmarshal(v, &p); err != nil {
			t.Fatal(err)
		}
		if got := len(p.Reasons) == 3; got != asked[id] {
			t.Fatalf("%v asked %v, has reasons %v: %s", id, asked[id], got, v)
		}
		if asked[id] {
			explained++
		}
	}
	if explained < 10 || len(sink.alerts) != 0 {
		t.Fatalf("%d explained, %d alerts", explained, len(sink.alerts))
	}
}
