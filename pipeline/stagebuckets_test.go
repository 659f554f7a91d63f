package pipeline

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestStageBucketBounds checks that stageUpperBound is the inverse of stageBucket: every
// duration lands in the bucket whose bounds hold it, at each bound and on either side.
func TestStageBucketBounds(t *testing.T) {
	lower := 0.0
	for i := range stageBuckets - 1 {
		upper := stageUpperBound(i)
		if !(upper > lower) {
			t.Fatalf("bucket %d: upper bound %g not above the one before, %g", i, upper, lower)
		}
		lo, hi := int64(math.Round(lower*1e9)), int64(math.Round(upper*1e9))
		for _, d := range []int64{lo, (lo + hi) / 2, hi - 1} {
			if got := stageBucket(d); got != i {
				t.Errorf("%d ns: bucket %d, want %d [%g, %g)", d, got, i, lower, upper)
			}
		}
		if i >= stageSub && upper-lower > lower/stageSub*(1+1e-12) {
			t.Errorf("bucket %d [%g, %g): wider than a quarter of its lower bound", i, lower, upper)
		}
		lower = upper
	}
	if got := stageBucket(int64(math.Round(lower * 1e9))); got != stageBuckets-1 {
		t.Errorf("the last finite bound %g s: bucket %d, want +Inf (%d)", lower, got, stageBuckets-1)
	}
	if lower < 30 {
		t.Errorf("finite buckets end at %g s: want at least 30 s", lower)
	}
}

// TestStageBucketsTell20From30ms is the reason for the log-linear buckets: a 20 ms and a
// 30 ms stage time must not share a bucket, as they did with powers of two.
func TestStageBucketsTell20From30ms(t *testing.T) {
	a, b := stageBucket(int64(20*time.Millisecond)), stageBucket(int64(30*time.Millisecond))
	if a == b {
		t.Fatalf("20 ms and 30 ms both in bucket %d", a)
	}
	reg := prometheus.NewRegistry()
	st := newStageTimes()
	reg.MustRegister(st)
	st.observe(StageAck, int64(20*time.Millisecond))
	st.observe(StageAck, int64(30*time.Millisecond))
	h := stageHistograms(t, reg)["ack"]
	if p50 := histogramQuantile(h, 0.5); p50 >= 0.030*0.8 {
		t.Errorf("p50 of {20 ms, 30 ms} read from the buckets: %g s, want about 20 ms", p50)
	}
}

// TestStageQuantilesWithinResolution observes samples from heavy-tailed distributions and
// checks that the p50, p99 and p99.9 interpolated within the exposed buckets (as PromQL's
// histogram_quantile does) are within 25% of the samples' own quantiles: the bucket width.
func TestStageQuantilesWithinResolution(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() float64{
		"lognormal around 5 ms":  func() float64 { return 5e6 * math.Exp(rng.NormFloat64()) },
		"exponential, mean 20ms": func() float64 { return 20e6 * rng.ExpFloat64() },
		"uniform 1 µs to 40 ms":  func() float64 { return 1e3 + rng.Float64()*40e6 },
	}
	for name, draw := range dists {
		reg := prometheus.NewRegistry()
		st := newStageTimes()
		reg.MustRegister(st)
		samples := make([]float64, 20000)
		for i := range samples {
			samples[i] = math.Floor(draw())
			st.observe(StageQueue, int64(samples[i]))
		}
		slices.Sort(samples)
		h := stageHistograms(t, reg)["queue"]
		for _, q := range []float64{0.5, 0.99, 0.999} {
			exact := samples[int(math.Ceil(q*float64(len(samples))))-1] / 1e9
			got := histogramQuantile(h, q)
			if math.Abs(got-exact) > exact/4+1.024e-6 {
				t.Errorf("%s: q%g %g s from the buckets, %g s exactly: more than 25%% off", name, q, got, exact)
			}
		}
	}
}

// histogramQuantile is PromQL's histogram_quantile on an exposed histogram: linear
// interpolation within the bucket that holds the q-quantile's rank.
func histogramQuantile(h *dto.Histogram, q float64) float64 {
	bs := h.GetBucket()
	rank := q * float64(h.GetSampleCount())
	i := sort.Search(len(bs), func(i int) bool { return float64(bs[i].GetCumulativeCount()) >= rank })
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bs[i-1].GetUpperBound(), float64(bs[i-1].GetCumulativeCount())
	}
	return lo + (bs[i].GetUpperBound()-lo)*(rank-below)/(float64(bs[i].GetCumulativeCount())-below)
}
