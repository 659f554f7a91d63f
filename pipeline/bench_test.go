package pipeline

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
)

func BenchmarkDecode(b *testing.B) {
	s := referenceSchema(b)
	d := NewDecoder(s)
	ev := d.NewEvent()
	in := []byte(goodEvent)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		if err := d.Decode(in, time.Time{}, ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	s := referenceSchema(b)
	fs := referenceFeatures(b, s)
	d := NewDecoder(s)
	ev := d.NewEvent()
	if err := d.Decode([]byte(goodEvent), time.Time{}, ev); err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, fs.Len())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := fs.Extract(ev, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePrediction(b *testing.B) {
	e := newPredictionEncoder("fraud", "39e4b2f8")
	buf := make([]byte, 0, 256)
	et := time.Date(2018, 4, 1, 0, 7, 56, 0, time.UTC)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = e.append(buf[:0], "transactions", 3, int64(i), []byte("596"), eventID{kind: TypeInt, i: int64(i)}, 0.0132, et, now, nil, nil)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkWindowFeatures is the stateful part of feature extraction for the handbook's
// 12 window features, in steady state at the handbook's density: 5,000 customers and
// 10,000 terminals, 10,000 events a day (about 2 per customer and 1 per terminal) for 40
// days, the first 35 only warming the state up. It reports the cost per event of the
// customer windows (scan, append, expiry), the insertion of its label into the feedback
// table and the terminal windows' lookup (the labels are read ahead: no wait is timed).
func BenchmarkWindowFeatures(b *testing.B) {
	s, fs := handbookSpec(b)
	recs, _, labels := genRecords(400_000, 5000, 10000, 8640*time.Millisecond, 0, rand.New(rand.NewPCG(1, 1)))
	d := NewDecoder(s)
	type decoded struct {
		r  *Record
		ev *Event
	}
	var evs []decoded
	for i := range recs {
		ev := d.NewEvent()
		if d.Decode(recs[i].Value, recs[i].Timestamp, ev) == nil {
			evs = append(evs, decoded{&recs[i], ev})
		}
	}
	feat := make([]float32, fs.Len())
	warm := len(evs) * 35 / 40
	var ws *windowState
	pos := len(evs)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if pos == len(evs) {
			b.StopTimer()
			var err error
			ws, err = newWindowState(fs, s, nil, &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(2, 2))}, NewMetrics(nil), zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range evs[:warm] {
				if err := ws.features(context.Background(), e.r, e.ev, feat); err != nil {
					b.Fatal(err)
				}
			}
			pos = warm
			b.StartTimer()
		}
		e := evs[pos]
		pos++
		if err := ws.features(context.Background(), e.r, e.ev, feat); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOperator is the whole operator per event, in memory: fetch batches of up to 300
// records, decode, the handbook's 15 features (windows over events and over the labels),
// micro-batching, the reference model on ONNX Runtime, encoding, a sink that acknowledges
// at once, and commit tracking. No Kafka: this is the pipeline's own CPU cost per event.
// drift=on adds drift monitoring (hourly windows against the shipped reference: about 94
// windows per partition are closed and written); compare it with drift=off of the same run.
func BenchmarkOperator(b *testing.B) {
	raw, err := os.ReadFile("../testdata/model/reference.json")
	if err != nil {
		b.Fatal(err)
	}
	ref, err := drift.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("drift=off", func(b *testing.B) { benchmarkOperator(b, nil) })
	b.Run("drift=on", func(b *testing.B) {
		benchmarkOperator(b, &DriftConfig{Topic: "drift", Window: time.Hour, MinCount: 500,
			Reference: func(Scorer) *drift.Reference { return ref }})
	})
}

func benchmarkOperator(b *testing.B, dc *DriftConfig) {
	s, fs := handbookSpec(b)
	model := openTestModel(b)
	const n = 20_000
	recs, _, labels := genRecords(n, 3000, 500, 17*time.Second, 0, rand.New(rand.NewPCG(1, 2)))
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	for i := range b.N {
		src := &memSource{recs: recs, rng: rand.New(rand.NewPCG(uint64(i), 9)), onCommit: func([]Offset) {}}
		op, err := New(Config{
			Schema: s, Features: fs, Model: model,
			Topics:   Topics{Predictions: "preds", Alerts: "alerts", DeadLetter: "dlq"},
			Batch:    scorer.BatcherConfig{MaxSize: 1024},
			Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(uint64(i), 3))},
			Drift:    dc,
		}, src, DiscardSink{})
		if err != nil {
			b.Fatal(err)
		}
		if err := op.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	events := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/events, "B/event")
}
