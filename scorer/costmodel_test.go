package scorer

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func within(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Abs(want)
}

// The fit recovers a and b exactly from noiseless samples, and within 15% from samples with
// ±10% multiplicative noise, weighted exponentially (about the last 40 count). Sizes stay
// at most 64 so that the per-call cost is not drowned by the noise of large batches.
func TestCostFitRecoversLine(t *testing.T) {
	const a, b = 2e-6, 50e-6 // 2µs per row, 50µs per call
	for _, tc := range []struct {
		name  string
		noise float64
		tol   float64
	}{{"noiseless", 0, 1e-9}, {"noisy", 0.1, 0.15}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for seed := range 20 {
				f := costFit{alpha: 0.05}
				for range 500 {
					n := 1 + rng.IntN(64)
					f.add(n, (a*float64(n)+b)*(1+tc.noise*(2*rng.Float64()-1)))
				}
				gotA, gotB := f.line()
				if !within(gotA, a, tc.tol) || !within(gotB, b, tc.tol) {
					t.Fatalf("seed %d: fitted a=%.3gs b=%.3gs, want %.3gs %.3gs within %.0f%%", seed, gotA, gotB, a, b, 100*tc.tol)
				}
			}
		})
	}
}

// Exponential weighting forgets: after the cost changes, the fit follows the new one.
func TestCostFitFollowsDrift(t *testing.T) {
	f := costFit{alpha: 0.05}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		n := 1 + rng.IntN(256)
		f.add(n, 1e-6*float64(n)+10e-6)
	}
	for range 300 {
		n := 1 + rng.IntN(256)
		f.add(n, 3e-6*float64(n)+40e-6)
	}
	if a, b := f.line(); !within(a, 3e-6, 0.01) || !within(b, 40e-6, 0.01) {
		t.Fatalf("after the cost changed to 3µs·n+40µs the fit is a=%.3g b=%.3g", a, b)
	}
}

// Degenerate and noisy inputs give a usable line, never a negative cost.
func TestCostFitEdgeCases(t *testing.T) {
	var f costFit
	if a, b := f.line(); a != 0 || b != 0 {
		t.Fatalf("empty fit = %v, %v; want 0, 0", a, b)
	}
	// One batch size only: slope unknown, all cost per call, and cost(8) predicted exactly.
	f = costFit{alpha: 0.05}
	for _, s := range []float64{9e-6, 11e-6, 10e-6, 10e-6} {
		f.add(8, s)
	}
	if a, b := f.line(); a != 0 || !within(b, 10e-6, 1e-9) {
		t.Fatalf("single size: a=%v b=%v, want 0 and the mean 10µs", a, b)
	}
	// A negative intercept falls back to the line through the origin.
	f = costFit{alpha: 0.05}
	for n := 4; n <= 64; n++ {
		f.add(n, 3e-6*float64(n)-10e-6)
	}
	if a, b := f.line(); b != 0 || a <= 0 {
		t.Fatalf("negative intercept: a=%v b=%v, want b=0 and a>0", a, b)
	}
	// A cost falling with n (noise) is clamped to a flat line.
	f = costFit{alpha: 0.05}
	for n := 1; n <= 64; n++ {
		f.add(n, 100e-6-1e-7*float64(n))
	}
	if a, b := f.line(); a != 0 || b <= 0 {
		t.Fatalf("falling cost: a=%v b=%v, want a=0 and b>0", a, b)
	}
}

func TestBusyRate(t *testing.T) {
	r := busyRate{alpha: 0.05}
	if r.perSecond() != 0 {
		t.Fatal("rate with no samples must be 0")
	}
	for range 100 {
		r.add(5, 50e-6)
		r.add(15, 150e-6)
	}
	if got := r.perSecond(); !within(got, 100e3, 1e-9) {
		t.Fatalf("rate = %v rows/s, want 100k", got)
	}
	closed := busyRate{alpha: 0.05}
	for range 100 {
		closed.add(0, 50e-6)
	}
	if closed.perSecond() != 0 {
		t.Fatalf("a producer that never submits during a flush has rate %v, want 0", closed.perSecond())
	}
}

// warmModel returns a load model that has seen enough flushes of cost a·n + b, each with
// λ·cost(n) rows arriving meanwhile.
func warmModel(a, b time.Duration, lambda float64) *loadModel {
	m := newLoadModel(0.05)
	for n := 1; n <= minSamples; n++ {
		d := time.Duration(n)*a + b
		m.observe(n, d, int(math.Round(lambda*d.Seconds())))
	}
	return m
}

// holdTarget implements the rule documented on Batcher: flush at once below θ, else hold for
// n* = ⌈λb/(θ−λa)⌉, MaxSize when λa ≥ θ, rounded up to a preferred size.
func TestHoldTarget(t *testing.T) {
	const a, b = 2 * time.Microsecond, 50 * time.Microsecond
	for _, tc := range []struct {
		name      string
		lambda    float64
		n         int
		preferred []int
		want      int
	}{
		// ρ(1) = 1000·52µs = 0.052: flush at once.
		{name: "low load", lambda: 1000, n: 1, want: 0},
		// ρ(6) = 100k·(2µs+50µs/6) ≈ 1.03: n* = ⌈5/0.7⌉ = 8.
		{name: "bottleneck", lambda: 100e3, n: 6, want: 8},
		// ρ(8) = 100k·(2µs+50µs/8) = 0.825 < 0.9: the batch is big enough.
		{name: "big enough", lambda: 100e3, n: 8, want: 0},
		{name: "preferred", lambda: 100e3, n: 6, preferred: []int{4, 16, 64}, want: 16},
		{name: "no preferred above", lambda: 100e3, n: 6, preferred: []int{2, 4}, want: 8},
		// λa = 1.2 ≥ θ: no batch size keeps up, fill to MaxSize.
		{name: "overload", lambda: 600e3, n: 30, want: 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := warmModel(a, b, tc.lambda)
			got, stall := m.holdTarget(tc.n, 1024, 0.9, tc.preferred)
			if got != tc.want {
				t.Fatalf("holdTarget(%d) at λ=%.0f/s = %d, want %d", tc.n, tc.lambda, got, tc.want)
			}
			if got > 0 && !within(stall.Seconds(), stallGaps/m.lambda, 1e-3) {
				t.Fatalf("stall = %v, want %d gaps of 1/λ", stall, stallGaps)
			}
		})
	}
	cold := newLoadModel(0.05)
	for n := 1; n < minSamples; n++ {
		cold.observe(n, time.Duration(n)*a+b, 100)
	}
	if got, _ := cold.holdTarget(1, 1024, 0.9, nil); got != 0 {
		t.Fatalf("holdTarget before %d flushes = %d, want 0 (not enough evidence)", minSamples, got)
	}
}
