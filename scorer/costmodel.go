package scorer

import (
	"math"
	"sync"
	"time"
)

// ewWeight is the weight given to the k-th observation (k counts from 1): 1/k at first, so
// that the first 1/alpha observations are weighted equally (an exact least-squares fit of a
// short history, no bias towards the zero starting point), then alpha, so that the estimate
// follows a cost that drifts (a warmer cache, a busier host, a bigger model).
func ewWeight(k int, alpha float64) float64 {
	return max(1/float64(k), alpha)
}

// costFit fits cost(n) = a·n + b, in seconds for a batch of n rows, by exponentially
// weighted least squares. It keeps the weighted means of n and of the cost and their
// weighted (co)variance, updated in the numerically stable incremental form, so an update
// is a handful of flops and the fit is exact for noiseless linear data. Not goroutine-safe.
type costFit struct {
	alpha   float64
	samples int
	meanN   float64 // weighted mean batch size
	meanS   float64 // weighted mean seconds per batch
	varN    float64 // weighted variance of the batch size
	covNS   float64 // weighted covariance of batch size and seconds
}

func (f *costFit) add(n int, seconds float64) {
	f.samples++
	w := ewWeight(f.samples, f.alpha)
	dn, ds := float64(n)-f.meanN, seconds-f.meanS
	f.meanN += w * dn
	f.meanS += w * ds
	f.varN = (1 - w) * (f.varN + w*dn*dn)
	f.covNS = (1 - w) * (f.covNS + w*dn*ds)
}

// minVarN is the batch-size variance below which the sizes seen are taken to be all the
// same: the slope is then unknown. Sizes are integers, so any real spread is far above it.
const minVarN = 1e-9

// line returns the fitted seconds per row (a) and per call (b), both at least 0.
//
// With a single batch size seen, a and b cannot be told apart; the whole cost is then put on
// the call (a = 0), which predicts that size exactly. A negative slope (noise, or a cost
// that falls with n) is clamped to 0 the same way; a negative intercept falls back to the
// least-squares line through the origin (all cost per row).
func (f *costFit) line() (perRow, perCall float64) {
	if f.samples == 0 {
		return 0, 0
	}
	if f.varN > minVarN {
		perRow = max(f.covNS/f.varN, 0)
	}
	perCall = f.meanS - perRow*f.meanN
	if perCall < 0 {
		// Σw·n·s / Σw·n² in terms of the moments kept.
		perRow = max((f.covNS+f.meanN*f.meanS)/(f.varN+f.meanN*f.meanN), 0)
		perCall = 0
	}
	return perRow, perCall
}

// busyRate estimates λ, the rows per second submitted while the flush function runs, as the
// ratio of the exponentially weighted rows that arrived during flushes to the exponentially
// weighted time spent flushing. Counting only arrivals during flushes is deliberate: it is
// what decides whether the scorer keeps up, and a producer that waits for each flush before
// submitting again (a closed loop) shows λ = 0, so holding a batch for it never pays.
// Not goroutine-safe.
type busyRate struct {
	alpha   float64
	samples int
	rows    float64 // weighted mean rows arrived per flush
	seconds float64 // weighted mean seconds per flush
}

func (r *busyRate) add(rows int, seconds float64) {
	r.samples++
	w := ewWeight(r.samples, r.alpha)
	r.rows += w * (float64(rows) - r.rows)
	r.seconds += w * (seconds - r.seconds)
}

func (r *busyRate) perSecond() float64 {
	if r.seconds <= 0 {
		return 0 // no time measured (a clock that did not move): no evidence of load
	}
	return r.rows / r.seconds
}

// minSamples is how many flushes the batcher observes before it trusts its estimates enough
// to hold a batch open.
const minSamples = 8

// stallGaps is how many expected inter-arrival gaps (1/λ) a held batch waits for its next
// row before concluding that the arrivals have stopped. With Poisson arrivals a gap this
// long happens by chance once in e⁴ ≈ 55 waits.
const stallGaps = 4

// loadModel is the batcher's view of its load: the flush cost fit and the arrival rate. The
// Run goroutine owns fit and rate and reads the cached estimates without locking; every
// update also publishes a copy under mu for CostModel and ArrivalRate.
type loadModel struct {
	fit  costFit
	rate busyRate

	// estimates as of the last flush, for the Run goroutine
	perRow, perCall, lambda float64

	mu  sync.Mutex
	pub struct {
		perRow, perCall, lambda float64
		samples                 int
	}
}

func newLoadModel(alpha float64) *loadModel {
	return &loadModel{fit: costFit{alpha: alpha}, rate: busyRate{alpha: alpha}}
}

// observe records one flush of n rows that took d while arrived rows were submitted.
func (m *loadModel) observe(n int, d time.Duration, arrived int) {
	s := d.Seconds()
	m.fit.add(n, s)
	m.rate.add(arrived, s)
	m.perRow, m.perCall = m.fit.line()
	m.lambda = m.rate.perSecond()
	m.mu.Lock()
	m.pub.perRow, m.pub.perCall, m.pub.lambda, m.pub.samples = m.perRow, m.perCall, m.lambda, m.fit.samples
	m.mu.Unlock()
}

// holdTarget returns the size that a batch of n rows, whose queue just ran empty, is worth
// waiting for, and how long to wait for each next row before giving up; target 0 means
// flush now. See Batcher for the rule.
func (m *loadModel) holdTarget(n, maxSize int, theta float64, preferred []int) (target int, stall time.Duration) {
	if m.fit.samples < minSamples || m.lambda <= 0 || n >= maxSize {
		return 0, 0
	}
	a, b, lambda := m.perRow, m.perCall, m.lambda
	if lambda*(a+b/float64(n)) < theta {
		return 0, 0
	}
	target = maxSize
	if room := theta - lambda*a; room > 0 {
		// ρ(n*) ≤ θ ⇔ n* ≥ λb/(θ − λa); compared as floats first, the quotient may be huge.
		if want := lambda * b / room; want < float64(maxSize) {
			target = int(math.Ceil(want))
		}
	}
	target = max(target, n+1)
	for _, p := range preferred { // ascending
		if p >= target {
			target = p
			break
		}
	}
	// Capped so that the conversion cannot overflow; the caller caps it at MaxWait anyway.
	return target, time.Duration(min(stallGaps/lambda, 3600) * float64(time.Second))
}

// snapshot returns the estimates published by the last flush; goroutine-safe.
func (m *loadModel) snapshot() (perRow, perCall, lambda float64, samples int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pub.perRow, m.pub.perCall, m.pub.lambda, m.pub.samples
}
