package pipeline

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamscore/streamscore/scorer"
)

// countingSink counts alerts and discards everything.
type countingSink struct{ preds, alerts atomic.Int64 }

func (k *countingSink) Produce(out *Output, ack func(error)) {
	switch out.Topic {
	case "alerts":
		k.alerts.Add(1)
	case "preds":
		k.preds.Add(1)
	}
	ack(nil)
}

func (k *countingSink) Flush(context.Context) error { return nil }

// BenchmarkOperatorExplain is the catch-up cost of reason codes: the operator over the
// same records with explanations off, on at the reference threshold (0.5), and on at
// the threshold that alerts 5% of the rows. The synthetic records of these benchmarks
// alert far more often than the handbook's stream at 0.5: alerts/event says how many.
// Compare ns/event within one run.
func BenchmarkOperatorExplain(b *testing.B) {
	s, fs := handbookSpec(b)
	model := openTestModel(b)
	const n = 1000 // 20 ms an explained row on a loaded 2-core machine: keep it short
	recs, _, labels := genRecords(n, 3000, 500, 17*time.Second, 0, rand.New(rand.NewPCG(1, 2)))
	run := func(b *testing.B, threshold float32, explain bool, sink Sink) {
		src := &memSource{recs: recs, rng: rand.New(rand.NewPCG(1, 9)), onCommit: func([]Offset) {}}
		op, err := New(Config{
			Schema: s, Features: fs, Model: model, Threshold: threshold,
			Topics:   Topics{Predictions: "preds", Alerts: "alerts", DeadLetter: "dlq"},
			Batch:    scorer.BatcherConfig{MaxSize: 1024},
			Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(1, 3))},
			Explain:  ExplainConfig{Enabled: explain, TopK: 5},
		}, src, sink)
		if err != nil {
			b.Fatal(err)
		}
		if err := op.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	rec := newRecordingSink()
	run(b, 2, false, rec)
	scores := make([]float32, 0, len(rec.scores))
	for _, v := range rec.scores {
		scores = append(scores, v)
	}
	slices.Sort(scores)
	// The lowest threshold alerting at most 5% of rows: forest scores tie a lot.
	top5 := scores[len(scores)-1]
	for i := len(scores) - 1; i > 0 && len(scores)-i <= len(scores)/20; i-- {
		if scores[i-1] < scores[i] {
			top5 = scores[i]
		}
	}
	for _, c := range []struct {
		name      string
		threshold float32
		explain   bool
	}{
		{"explain=off/threshold=0.5", 0.5, false},
		{"explain=on/threshold=0.5", 0.5, true},
		{"explain=off/alerts=5%", top5, false},
		{"explain=on/alerts=5%", top5, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			var alerts, preds int64
			for range b.N {
				sink := &countingSink{}
				run(b, c.threshold, c.explain, sink)
				alerts += sink.alerts.Load()
				preds += sink.preds.Load()
			}
			events := float64(preds)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(alerts)/events, "alerts/event")
		})
	}
}
