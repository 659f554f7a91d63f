package pipeline

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/streamscore/streamscore/scorer"
)

// stageHistograms gathers streamscore_stage_seconds from reg, by stage.
func stageHistograms(t *testing.T, reg *prometheus.Registry) map[string]*dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		if mf.GetName() != "streamscore_stage_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetHistogram()
		}
	}
	return out
}

func TestStageTimesBuckets(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := newStageTimes()
	reg.MustRegister(st)
	st.observe(StageScore, 500)       // below 1.024µs: the first bucket
	st.observe(StageScore, 1500)      // [1.024µs, 2.048µs)
	st.observe(StageScore, 3_000_000) // 3ms: below 4.194304ms (1.024µs·2^12)
	st.observe(StageScore, -5)        // a clock step backwards counts as 0
	st.observe(StageScore, 1<<62)     // past the last finite bucket: +Inf only
	h := stageHistograms(t, reg)["score"]
	if h.GetSampleCount() != 5 {
		t.Fatalf("count %d, want 5", h.GetSampleCount())
	}
	want := map[float64]uint64{1.024e-6: 2, 2.048e-6: 3, 2.097152e-3: 3, 4.194304e-3: 4}
	for _, b := range h.GetBucket() {
		if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("le %g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
		delete(want, b.GetUpperBound())
	}
	if len(want) > 0 {
		t.Errorf("buckets missing: %v", want)
	}
	if got := stageHistograms(t, reg)["ack"].GetSampleCount(); got != 0 {
		t.Errorf("ack: %d observations, want 0", got)
	}
}

// TestOperatorObservesEveryStage checks that each scored record is observed once in every
// stage, and every fetched record in the fetch stage, so that the stages of /metrics add
// up to the records' latency.
func TestOperatorObservesEveryStage(t *testing.T) {
	s, fs := handbookSpec(t)
	recs, bad, labels := testRecordsWithLabels(2000, rand.New(rand.NewPCG(4, 5)))
	reg := prometheus.NewRegistry()
	op, err := New(Config{
		Schema: s, Features: fs, Model: openTestModel(t), MeasureLatency: true, Metrics: NewMetrics(reg),
		Topics:   Topics{Predictions: "preds", DeadLetter: "dlq"},
		Batch:    scorer.BatcherConfig{MaxSize: 64},
		Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(6, 7))},
	}, &memSource{recs: recs, rng: rand.New(rand.NewPCG(8, 9)), onCommit: func([]Offset) {}}, newRecordingSink())
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := stageHistograms(t, reg)
	scored := uint64(len(recs) - len(bad))
	for s := range numStages {
		want := scored
		if s == StageFetch {
			want = uint64(len(recs))
		}
		if got := hs[s.String()].GetSampleCount(); got != want {
			t.Errorf("stage %s: %d observations, want %d", s, got, want)
		}
	}
}
