package scorer

// The batcher's adaptive sizing: preferred sizes, the cost model learnt from flushes, holds
// while the scorer is the bottleneck, on a simulated clock (sim). The basic flush rules and
// the test helpers are in batcher_test.go.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// Triton's rule: cut at the largest preferred size that the queue holds, even below MaxSize.
func TestBatcherPreferredSizes(t *testing.T) {
	type cut struct {
		n      int
		reason FlushReason
	}
	for _, tc := range []struct {
		name      string
		maxSize   int
		preferred []int
		want      []cut
	}{
		{"below max size", 16, []int{4, 8}, []cut{{8, FlushPreferred}, {8, FlushPreferred}, {4, FlushPreferred}, {3, FlushIdle}}},
		{"max size listed", 16, []int{16, 4}, []cut{{16, FlushSize}, {4, FlushPreferred}, {3, FlushIdle}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, out := newTestBatcher(t, BatcherConfig{MaxSize: tc.maxSize, PreferredSizes: tc.preferred, QueueSize: 100})
			for i := range 23 {
				if err := b.Submit(context.Background(), i); err != nil {
					t.Fatal(err)
				}
			}
			runBatcher(t, b)
			seen := 0
			for _, w := range tc.want {
				f := next(t, out)
				if len(f.rows) != w.n || f.reason != w.reason {
					t.Fatalf("batch of %d (%v), want %d (%v)", len(f.rows), f.reason, w.n, w.reason)
				}
				for _, r := range f.rows {
					if r != seen {
						t.Fatalf("row %d out of order, want %d", r, seen)
					}
					seen++
				}
			}
		})
	}
}

// The cost model fitted from the flushes Run measures is exact for a flush whose cost is
// exactly linear: here a fake clock that only the flush function moves, by 50µs + 2µs·n.
// CostModel is read concurrently all along (the race detector checks it is safe).
func TestBatcherCostModelFromFlushes(t *testing.T) {
	var now time.Time // only the Run goroutine touches it
	b, err := NewBatcher(BatcherConfig{MaxSize: 10, QueueSize: 100}, func(_ context.Context, batch Batch[int]) error {
		now = now.Add(50*time.Microsecond + time.Duration(len(batch.Rows))*2*time.Microsecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.now = func() time.Time { return now }
	for i := range 37 { // batches of 10, 10, 10 and 7: two sizes, enough to fit a line
		if err := b.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	b.CloseInput()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
				b.CostModel()
				b.ArrivalRate()
			}
		}
	}()
	err = b.Run(context.Background())
	close(stop)
	<-stopped
	if err != nil {
		t.Fatal(err)
	}
	perRow, perCall, samples := b.CostModel()
	if perRow != 2*time.Microsecond || perCall != 50*time.Microsecond || samples != 4 {
		t.Fatalf("CostModel = %v per row + %v per call from %d flushes, want 2µs + 50µs from 4", perRow, perCall, samples)
	}
	if r := b.ArrivalRate(); r != 0 {
		t.Fatalf("nothing was submitted during the flushes, yet ArrivalRate = %v", r)
	}
}

// At low load (each row submitted after the previous flush completed) the adaptive batcher
// flushes every row alone, at once, exactly like the greedy one, though the flush function
// is slow: on a fake clock that only the flush function moves, each flush costs 20µs.
// "At once" is checked without timing: a batch flushed at once reads the clock three times
// (its first row, the start and the end of its flush); a held batch reads it more.
func TestBatcherAdaptiveLowLoadFlushesAtOnce(t *testing.T) {
	out := make(chan flushed, 1)
	var mu sync.Mutex
	var now time.Time
	var readings int
	b, err := NewBatcher(BatcherConfig{MaxSize: 1000, MaxWait: time.Hour, Adaptive: true}, func(_ context.Context, batch Batch[int]) error {
		mu.Lock()
		now = now.Add(20 * time.Microsecond)
		mu.Unlock()
		out <- flushed{rows: append([]int(nil), batch.Rows...), reason: batch.Reason}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		readings++
		return now
	}
	runBatcher(t, b)
	const rows = 200
	for i := range rows {
		if err := b.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
		f := next(t, out)
		if len(f.rows) != 1 || f.rows[0] != i || f.reason != FlushIdle {
			t.Fatalf("got %+v, want row %d alone, flushed idle", f, i)
		}
		// The flush function has returned once Run has measured it.
		waitFor(t, func() bool { _, _, n := b.CostModel(); return n == i+1 }, "flush %d to be measured", i)
		mu.Lock()
		got := readings
		mu.Unlock()
		if got != 3*(i+1) {
			t.Fatalf("after %d batches the clock was read %d times, want %d: a batch was held", i+1, got, 3*(i+1))
		}
	}
	if _, perCall, _ := b.CostModel(); perCall != 20*time.Microsecond {
		t.Fatalf("per-call cost %v, but every flush took 20µs", perCall)
	}
}

// Under saturation (a producer much faster than a flush costing 50µs + 2µs·n) batches grow
// large, in order, with or without Adaptive. In virtual time (see sim), so that the verdict
// does not depend on how fast the machine is: rows arrive every 100ns on average (10M
// rows/s), so about 500 arrive while a batch of 256 is scored.
func TestBatcherSaturatedBatchesGrow(t *testing.T) {
	cost := func(n int) time.Duration { return 50*time.Microsecond + time.Duration(n)*2*time.Microsecond }
	for _, adaptive := range []bool{false, true} {
		t.Run(fmt.Sprintf("adaptive=%v", adaptive), func(t *testing.T) {
			const rows = 20000
			s := newSim(t, BatcherConfig{MaxSize: 256, Adaptive: adaptive}, rows, 100*time.Nanosecond, cost)
			s.run(t) // checks that every row is flushed, in order
			sizes := make([]int, len(s.batches))
			for i, batch := range s.batches {
				sizes[i] = len(batch.rows)
			}
			if mean := float64(rows) / float64(len(sizes)); mean < 32 {
				t.Fatalf("mean batch %.1f rows under saturation, want at least 32 (sizes %v)", mean, sizes)
			}
		})
	}
}

// sim drives a Batcher in virtual time, deterministically: every clock reading advances
// the clock by tick (the cost of looking), the flush function advances it by cost(n), and
// every reading submits the rows that an open-loop producer has submitted by then, closing
// the input after the last. The gaps between rows are drawn uniformly from [0, 2·gap) with a
// fixed seed, random enough to keep flushes from locking onto the arrivals' phase, and
// short enough that rows are due after every flush (else Run would wait for a row that
// only a clock reading can submit). Everything runs on the goroutine calling run, so no
// locking is needed.
type sim struct {
	b        *Batcher[int]
	start    time.Time
	now      time.Time
	tick     time.Duration
	arrivals []time.Duration // of each row, from start
	next     int
	closed   bool
	cost     func(n int) time.Duration
	batches  []simBatch
}

type simBatch struct {
	rows   []int
	reason FlushReason
	waited time.Duration // from the first row taken to the flush
	// What the adaptive rule said, with the estimates it decided this batch with: the
	// size to hold a batch of one for, and whether to hold one of this batch's size.
	targetFromOne int
	holdThis      bool
}

func newSim(t *testing.T, cfg BatcherConfig, rows int, gap time.Duration, cost func(int) time.Duration) *sim {
	t.Helper()
	cfg.QueueSize = rows // Submit from the clock must never block
	s := &sim{start: time.Unix(0, 0), tick: time.Microsecond, cost: cost}
	rng := rand.New(rand.NewPCG(5, 6))
	var at time.Duration
	for range rows {
		s.arrivals = append(s.arrivals, at)
		at += time.Duration(2 * rng.Float64() * float64(gap))
	}
	s.now = s.start
	b, err := NewBatcher(cfg, func(_ context.Context, batch Batch[int]) error {
		// Whether or not Adaptive is set, what the rule makes of the current estimates.
		c := s.b.cfg
		fromOne, _ := s.b.load.holdTarget(1, c.MaxSize, c.TargetUtilisation, c.PreferredSizes)
		this, _ := s.b.load.holdTarget(len(batch.Rows), c.MaxSize, c.TargetUtilisation, c.PreferredSizes)
		s.batches = append(s.batches, simBatch{
			rows: slices.Clone(batch.Rows), reason: batch.Reason, waited: s.now.Sub(batch.Oldest),
			targetFromOne: fromOne, holdThis: this != 0,
		})
		s.now = s.now.Add(s.cost(len(batch.Rows)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.now = s.clock
	s.b = b
	return s
}

func (s *sim) clock() time.Time {
	s.now = s.now.Add(s.tick)
	for s.next < len(s.arrivals) && s.now.Sub(s.start) >= s.arrivals[s.next] {
		if err := s.b.Submit(context.Background(), s.next); err != nil {
			panic(err) // cannot happen: the queue holds every row
		}
		s.next++
	}
	if s.next == len(s.arrivals) && !s.closed {
		s.b.CloseInput()
		s.closed = true
	}
	return s.now
}

// run submits the first row and runs the batcher to the end; a bug that leaves it waiting
// for a row fails the test instead of hanging it.
func (s *sim) run(t *testing.T) {
	t.Helper()
	s.clock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.b.Run(ctx); err != nil {
		t.Fatalf("Run = %v after %d batches, %d of %d rows submitted", err, len(s.batches), s.next, len(s.arrivals))
	}
	seen := 0
	for _, batch := range s.batches {
		for _, r := range batch.rows {
			if r != seen {
				t.Fatalf("row %d flushed where %d was due", r, seen)
			}
			seen++
		}
	}
	if seen != len(s.arrivals) {
		t.Fatalf("%d of %d rows flushed", seen, len(s.arrivals))
	}
}

// summary counts the batches after the first skip by reason, and their mean size.
func (s *sim) summary(skip int) (reasons map[FlushReason]int, mean float64) {
	reasons = map[FlushReason]int{}
	rows := 0
	for _, batch := range s.batches[skip:] {
		reasons[batch.reason]++
		rows += len(batch.rows)
	}
	return reasons, float64(rows) / float64(len(s.batches)-skip)
}

// The decision rule end to end, in virtual time. Rows arrive every 10µs on average
// (λ = 100k rows/s) and a flush costs 50µs + 2µs·n (51µs per call as measured: the clock
// reading that ends the measurement costs a tick). The greedy batcher settles where the
// scorer is always busy, λ·(a + b/n) = 1: n = λb/(1−λa) ≈ 6.4. The adaptive one holds batches
// for n* = ⌈λb/(θ−λa)⌉ ≈ ⌈5.1/0.7⌉ = 8 rows (θ = 0.9), or ⌈5.1/0.3⌉ = 17 with θ = 0.5, with
// its estimate of λ (which varies: the arrivals are random). Every batch is checked against
// the rule applied to the estimates it was decided with.
func TestBatcherAdaptiveHoldsWhenScorerIsBottleneck(t *testing.T) {
	cost := func(n int) time.Duration { return 50*time.Microsecond + time.Duration(n)*2*time.Microsecond }
	for _, tc := range []struct {
		name     string
		cfg      BatcherConfig
		min, max float64 // mean batch size once the rule applies
	}{
		{name: "greedy", cfg: BatcherConfig{}, min: 5, max: 8},
		{name: "adaptive", cfg: BatcherConfig{Adaptive: true}, min: 7.5, max: 10},
		{name: "adaptive θ=0.5", cfg: BatcherConfig{Adaptive: true, TargetUtilisation: 0.5}, min: 15, max: 20},
		// The target is raised to the next preferred size, 16; the smaller preferred size 4
		// does not cut a held batch.
		{name: "adaptive preferred", cfg: BatcherConfig{Adaptive: true, PreferredSizes: []int{4, 16, 64}}, min: 15, max: 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, tc.cfg, 3000, 10*time.Microsecond, cost)
			s.run(t)
			bottlenecked := 0
			for i, batch := range s.batches[minSamples:] {
				n := len(batch.rows)
				if batch.holdThis {
					bottlenecked++
				}
				switch {
				case batch.reason == FlushClose:
				case !tc.cfg.Adaptive && (batch.reason == FlushIdle || batch.reason == FlushPreferred):
				case batch.reason == FlushTarget && n == batch.targetFromOne:
				case (batch.reason == FlushIdle || batch.reason == FlushPreferred) && !batch.holdThis:
				default:
					t.Fatalf("batch %d: %d rows (%v), but the rule said: hold a batch of one for %d rows, hold this one: %v",
						minSamples+i, n, batch.reason, batch.targetFromOne, batch.holdThis)
				}
			}
			reasons, mean := s.summary(minSamples)
			perRow, perCall, _ := s.b.CostModel()
			t.Logf("%d batches, once warm: mean %.2f rows, reasons %v, %d flushed with ρ(n) ≥ θ; fitted %v·n + %v, λ = %.0f rows/s",
				len(s.batches), mean, reasons, bottlenecked, perRow, perCall, s.b.ArrivalRate())
			if mean < tc.min || mean > tc.max {
				t.Fatalf("mean batch %.2f rows, want %.1f to %.1f", mean, tc.min, tc.max)
			}
			if perRow != 2*time.Microsecond || perCall != 51*time.Microsecond {
				t.Fatalf("fitted cost %v·n + %v, want 2µs·n + 51µs", perRow, perCall)
			}
			if tc.cfg.Adaptive && reasons[FlushTarget] < len(s.batches)/2 {
				t.Fatalf("only %d of %d batches held to their target", reasons[FlushTarget], len(s.batches))
			}
		})
	}
}

// A held batch never waits longer than MaxWait since its first row. At λ = 400k rows/s and
// 2µs·n + 50µs the rule holds batches for n* = ⌈λb/(θ−λa)⌉ = ⌈20/0.1⌉ = 200 rows, and the
// rows missing when the queue runs empty take longer to come than a MaxWait of 50µs.
func TestBatcherAdaptiveHoldIsBoundedByMaxWait(t *testing.T) {
	cost := func(n int) time.Duration { return 50*time.Microsecond + time.Duration(n)*2*time.Microsecond }
	const maxWait = 50 * time.Microsecond
	s := newSim(t, BatcherConfig{Adaptive: true, MaxWait: maxWait}, 20000, 2500*time.Nanosecond, cost)
	s.run(t)
	waits := 0
	for i, batch := range s.batches {
		if batch.waited > maxWait+s.tick {
			t.Fatalf("batch %d (%d rows, %v): first row waited %v, more than MaxWait %v", i, len(batch.rows), batch.reason, batch.waited, maxWait)
		}
		if batch.reason == FlushWait {
			waits++
		}
	}
	reasons, mean := s.summary(20)
	t.Logf("%d batches, mean %.1f rows after warm-up, reasons %v", len(s.batches), mean, reasons)
	if waits == 0 {
		t.Fatalf("no batch was cut by MaxWait: reasons %v", reasons)
	}
}

// A batch held open for more rows is dropped, not flushed, when ctx ends, and Run returns
// ctx's error, as for rows still queued.
func TestBatcherHoldEndsOnCancel(t *testing.T) {
	b, out := newTestBatcher(t, BatcherConfig{Adaptive: true, MaxWait: time.Hour})
	// Estimates that make any batch worth holding for an hour: one row per 1000s arrives
	// during flushes costing 10000s per call, so ρ(1) = 10 and the stall time is capped at 1h.
	b.load = warmModel(2*time.Microsecond, 50*time.Microsecond, 0)
	b.load.lambda, b.load.perCall = 1e-3, 1e4
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	if err := b.Submit(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return b.Queued() == 0 }, "the row to be taken")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case f := <-out:
		t.Fatalf("held batch flushed (%+v) although ctx ended first", f)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// A held batch whose arrivals stop goes out idle after 4/λ, long before MaxWait: here one
// row is held, λ = 1000 rows/s, so after 4ms (slept on a timer, then polled).
func TestBatcherHoldEndsWhenArrivalsStop(t *testing.T) {
	b, out := newTestBatcher(t, BatcherConfig{Adaptive: true, MaxWait: time.Hour})
	// ρ(1) = 1000/s · (2µs + 1s) ≫ θ: hold for MaxSize rows, 4ms per row at most.
	b.load = warmModel(2*time.Microsecond, 50*time.Microsecond, 0)
	b.load.lambda, b.load.perCall = 1e3, 1
	runBatcher(t, b)
	if err := b.Submit(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	if f := next(t, out); len(f.rows) != 1 || f.rows[0] != 7 || f.reason != FlushIdle {
		t.Fatalf("got %+v, want row 7 alone, flushed idle once the arrivals stopped", f)
	}
}
