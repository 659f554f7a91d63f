package scorer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"
)

// FlushReason says why the batcher closed a batch.
type FlushReason int

const (
	// FlushSize means the batch reached MaxSize rows.
	FlushSize FlushReason = iota
	// FlushIdle means the queue ran empty, so waiting longer would only add latency. This is
	// what keeps a lightly loaded pipeline at batch size one with no added wait. A batch
	// held open by the adaptive rule is also flushed idle when its arrivals stop.
	FlushIdle
	// FlushWait means rows kept arriving one by one, never filling MaxSize, and the oldest row
	// had waited MaxWait; or a batch held open by the adaptive rule reached MaxWait.
	FlushWait
	// FlushClose means the input was closed; the last partial batch goes out.
	FlushClose
	// FlushPreferred means the rows taken plus those queued reached one of PreferredSizes but
	// not a larger one, and the batch was cut at that size.
	FlushPreferred
	// FlushTarget means the adaptive rule held the batch open because the scorer was the
	// bottleneck, and it reached the size the cost model asked for.
	FlushTarget
)

func (r FlushReason) String() string {
	switch r {
	case FlushSize:
		return "size"
	case FlushIdle:
		return "idle"
	case FlushWait:
		return "wait"
	case FlushClose:
		return "close"
	case FlushPreferred:
		return "preferred"
	case FlushTarget:
		return "target"
	}
	return fmt.Sprintf("FlushReason(%d)", int(r))
}

// BatcherConfig tunes the micro-batcher. The zero value of every field is a sensible
// default, and the zero value of the fields added after MaxSize, MaxWait and QueueSize
// keeps the batcher's behaviour what it was before they existed.
type BatcherConfig struct {
	// MaxSize is the largest batch handed to the flush function (default 1024).
	MaxSize int
	// MaxWait bounds how long the first row of a batch waits for more rows while rows keep
	// trickling in (default 2ms), and how long the adaptive rule may hold a batch open. It
	// never makes an idle queue wait: see FlushIdle.
	MaxWait time.Duration
	// QueueSize is the number of rows that may wait for the batcher; Submit blocks when it
	// is full, which is how a slow scorer pushes back on the fetch loop (default 4*MaxSize).
	QueueSize int

	// Adaptive lets the batcher hold a batch open for more rows when its queue runs empty
	// but the flush function, by its fitted cost, is the bottleneck (see Batcher). Off by
	// default: without it a batch is flushed as soon as the queue runs empty, which already
	// grows batches by itself under saturation; holding trades a latency bounded by MaxWait,
	// and a processor kept polling while it holds, for headroom on the scorer.
	Adaptive bool
	// TargetUtilisation is θ, the share of time the flush function may be busy before the
	// adaptive rule starts holding batches; held batches are sized to bring it back to θ.
	// Within (0, 1]; default 0.9.
	TargetUtilisation float64
	// PreferredSizes are batch sizes the model runs best at, as Triton's
	// preferred_batch_size: when the rows taken plus those queued reach one of them, the
	// batch is cut at the largest one they reach (FlushPreferred), even below MaxSize, so
	// list MaxSize too if full batches are wanted under saturation. A held batch aims for
	// the smallest preferred size that brings utilisation to θ, and is not cut at smaller
	// ones. Each must be within [1, MaxSize], without repeats; any order (the batcher keeps
	// a sorted copy). Default none.
	PreferredSizes []int
	// Smoothing is the weight of the newest flush in the exponentially weighted estimates of
	// the flush cost and of the arrival rate: larger follows changes faster, smaller is
	// steadier. Within (0, 1]; default 0.05 (about the last 40 flushes).
	Smoothing float64
}

func (c *BatcherConfig) defaults() error {
	if c.MaxSize == 0 {
		c.MaxSize = 1024
	}
	if c.MaxWait == 0 {
		c.MaxWait = 2 * time.Millisecond
	}
	if c.QueueSize == 0 {
		c.QueueSize = 4 * c.MaxSize
	}
	if c.TargetUtilisation == 0 {
		c.TargetUtilisation = 0.9
	}
	if c.Smoothing == 0 {
		c.Smoothing = 0.05
	}
	switch {
	case c.MaxSize < 1:
		return fmt.Errorf("batch max_size %d: must be at least 1", c.MaxSize)
	case c.MaxWait < 0:
		return fmt.Errorf("batch max_wait %v: must not be negative", c.MaxWait)
	case c.QueueSize < 1:
		return fmt.Errorf("batch queue_size %d: must be at least 1", c.QueueSize)
	case !(c.TargetUtilisation > 0 && c.TargetUtilisation <= 1): // also rejects NaN
		return fmt.Errorf("batch target_utilisation %v: must be within (0, 1], e.g. 0.9 to keep the scorer busy at most 90%% of the time", c.TargetUtilisation)
	case !(c.Smoothing > 0 && c.Smoothing <= 1):
		return fmt.Errorf("batch smoothing %v: must be within (0, 1], e.g. 0.05 to average about the last 40 flushes", c.Smoothing)
	}
	if len(c.PreferredSizes) > 0 {
		// A copy: the caller's slice is neither reordered nor shared.
		sizes := slices.Clone(c.PreferredSizes)
		slices.Sort(sizes)
		for i, p := range sizes {
			switch {
			case p < 1:
				return fmt.Errorf("batch preferred_sizes %v: size %d must be at least 1", c.PreferredSizes, p)
			case p > c.MaxSize:
				return fmt.Errorf("batch preferred_sizes %v: size %d is larger than max_size %d: raise max_size or drop it", c.PreferredSizes, p, c.MaxSize)
			case i > 0 && p == sizes[i-1]:
				return fmt.Errorf("batch preferred_sizes %v: size %d is listed twice: list each size once", c.PreferredSizes, p)
			}
		}
		c.PreferredSizes = sizes
	}
	return nil
}

// Batch is what the flush function receives. Rows is only valid during the call.
type Batch[T any] struct {
	Rows   []T
	Reason FlushReason
	// Oldest is when the first row of the batch was taken from the queue.
	Oldest time.Time
}

// Batcher groups rows submitted by any number of goroutines into batches, in submission
// order, and hands each batch to one flush function on the goroutine running Run. Because
// flushes are serial and in order, per-source order is kept end to end. Timing decides
// where batches are cut, never the order of rows.
//
// Submit, SubmitUrgent, Queued, CloseInput, Config, CostModel and ArrivalRate are safe to
// call from any goroutine; Run must be called once. Rows submitted with SubmitUrgent are
// taken before queued ones (see SubmitUrgent).
//
// # When a batch is flushed
//
// The first row of a batch is taken as soon as it is queued; more are taken, in order,
// until the first of:
//   - the batch has MaxSize rows (FlushSize);
//   - the batch has a preferred size p, and the rows taken plus those queued do not reach
//     a larger preferred size (FlushPreferred), unless the adaptive rule holds it open;
//   - the batch is held open and has its target size (FlushTarget);
//   - the first row has waited MaxWait (FlushWait);
//   - the input is closed (FlushClose);
//   - the queue is empty (FlushIdle), unless the adaptive rule holds the batch open.
//
// Under saturation the queue fills while the previous batch is scored, so batches grow to
// MaxSize by themselves; when idle, a single row is flushed at once.
//
// # The adaptive rule
//
// After every flush of n rows the batcher records how long the flush function took and how
// many rows were submitted meanwhile. From these it keeps, exponentially weighted with
// weight Smoothing (see CostModel and ArrivalRate):
//
//	cost(n) = a·n + b   least squares over (n, seconds): a per row, b per call
//	λ = rows submitted during flushes / seconds spent flushing
//
// Flushing batches of n rows, λ·cost(n) rows arrive while each is scored; the scorer keeps
// up only if that is below n, that is if its utilisation
//
//	ρ(n) = λ·(a + b/n)
//
// is below 1. When the queue runs empty (or a preferred size would cut the batch) with n
// rows taken and ρ(n) < θ (TargetUtilisation), the batch is flushed at once, exactly as
// without Adaptive: at low load that is a batch of one with no added wait. Otherwise the
// scorer is the bottleneck, and the batch is held open until it has
//
//	n* = ⌈λ·b / (θ − λ·a)⌉ rows   (MaxSize when λ·a ≥ θ),
//
// the smallest size with ρ(n*) ≤ θ, raised to the next preferred size if there is one
// (smaller preferred sizes do not cut it), and is then flushed (FlushTarget); it is flushed
// earlier when no row has come for 4/λ (the arrivals stopped: FlushIdle) or
// when its first row has waited MaxWait (FlushWait). Nothing is held until 8 flushes have
// been measured. Because λ counts only rows submitted while the flush function runs, a
// producer that waits for each batch to be scored before submitting more (λ = 0) is never
// made to wait.
//
// While it holds a batch, Run polls the queue, yielding the processor between polls, since
// Go timers shorter than a millisecond fire about a millisecond late on Linux; a hold with
// more than 2ms left sleeps on a timer until the last millisecond.
type Batcher[T any] struct {
	cfg     BatcherConfig
	in      chan T
	urgent  chan T        // rows taken before any row of in (SubmitUrgent)
	stopped chan struct{} // closed when Run returns
	flush   func(context.Context, Batch[T]) error
	now     func() time.Time
	load    *loadModel
}

// ErrBatcherClosed is returned by Submit after CloseInput.
var ErrBatcherClosed = errors.New("batcher input closed")

// NewBatcher validates cfg and returns a batcher that calls flush for each batch.
func NewBatcher[T any](cfg BatcherConfig, flush func(context.Context, Batch[T]) error) (*Batcher[T], error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Batcher[T]{
		cfg: cfg, in: make(chan T, cfg.QueueSize), urgent: make(chan T, cfg.MaxSize),
		stopped: make(chan struct{}), flush: flush, now: time.Now,
		load: newLoadModel(cfg.Smoothing),
	}, nil
}

// Config returns the configuration in effect, defaults filled in (PreferredSizes sorted).
func (b *Batcher[T]) Config() BatcherConfig {
	c := b.cfg
	c.PreferredSizes = slices.Clone(c.PreferredSizes)
	return c
}

// CostModel returns the fitted cost of one call of the flush function, perRow·n + perCall
// for n rows, and the number of flushes measured (0: no estimate yet). It is updated after
// every flush whether or not Adaptive is set, and is safe to call while Run runs.
func (b *Batcher[T]) CostModel() (perRow, perCall time.Duration, samples int) {
	a, c, _, n := b.load.snapshot()
	return time.Duration(math.Round(a * float64(time.Second))), time.Duration(math.Round(c * float64(time.Second))), n
}

// ArrivalRate returns λ, the estimated rows per second submitted while the flush function
// runs (see Batcher). It is safe to call while Run runs.
func (b *Batcher[T]) ArrivalRate() float64 {
	_, _, lambda, _ := b.load.snapshot()
	return lambda
}

// Submit queues one row, blocking while the queue is full. It returns ctx's error if ctx
// ends first. It must not be called after CloseInput.
func (b *Batcher[T]) Submit(ctx context.Context, row T) error {
	select {
	case b.in <- row:
		return nil
	default:
	}
	select {
	case b.in <- row:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Queued is the number of rows waiting.
func (b *Batcher[T]) Queued() int { return len(b.in) }

// CloseInput says no more rows will be submitted: Run flushes what is queued and returns.
func (b *Batcher[T]) CloseInput() { close(b.in) }

// Run collects and flushes batches until the input is closed and drained (nil), ctx ends
// (ctx's error; queued rows, and those of a batch being held, are not flushed) or flush
// fails (its error).
func (b *Batcher[T]) Run(ctx context.Context) error {
	defer close(b.stopped)
	rows := make([]T, 0, b.cfg.MaxSize)
	timer := time.NewTimer(time.Hour) // for holds longer than holdSleepAbove
	timer.Stop()
	defer timer.Stop()
	for {
		first, ok, got := b.poll()
		if !got {
			select {
			case first, ok = <-b.in:
			case first, ok = <-b.urgent:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !ok {
			return nil
		}
		start := b.now()
		rows = append(rows[:0], first)
		reason, closed, err := b.collect(ctx, &rows, start, timer)
		if err != nil {
			return err
		}
		t0 := b.now()
		queued := len(b.in)
		if err := b.flush(ctx, Batch[T]{Rows: rows, Reason: reason, Oldest: start}); err != nil {
			return err
		}
		took := b.now().Sub(t0)
		// Only Run takes rows out, so the queue can only have grown during the flush.
		arrived := len(b.in) - queued
		b.load.observe(len(rows), took, arrived)
		clear(rows) // drop references held by the rows so they can be collected
		if closed {
			return nil
		}
	}
}

// collect takes more rows into a batch that holds its first row, until one of the rules in
// Batcher's doc cuts it. closed says the input was closed; err is ctx's error when ctx
// ended while the batch was held.
func (b *Batcher[T]) collect(ctx context.Context, rows *[]T, start time.Time, timer *time.Timer) (reason FlushReason, closed bool, err error) {
	pi := 0                 // index of the smallest preferred size not below len(*rows)
	target := 0             // > 0 while the batch is held open for that many rows
	var stall time.Duration // how long a held batch waits for its next row
	for n := 1; ; n++ {
		k := len(*rows)
		if k >= b.cfg.MaxSize {
			return FlushSize, false, nil
		}
		if target > 0 {
			// Preferred sizes below the target are too small to keep up; the target is one
			// when there is one above.
			if k >= target {
				return FlushTarget, false, nil
			}
		} else if b.atPreferred(k, &pi) {
			if target, stall = b.holdTarget(k); target == 0 {
				return FlushPreferred, false, nil
			}
		}
		r, ok, got := b.poll()
		if !got {
			if target == 0 {
				if target, stall = b.holdTarget(k); target == 0 {
					return FlushIdle, false, nil
				}
			}
			var res holdResult
			r, res = b.await(ctx, start.Add(b.cfg.MaxWait), stall, timer)
			switch res {
			case holdStalled:
				return FlushIdle, false, nil
			case holdExpired:
				return FlushWait, false, nil
			case holdCanceled:
				return 0, false, ctx.Err()
			}
			ok = res == holdGotRow
		}
		if !ok {
			return FlushClose, true, nil
		}
		*rows = append(*rows, r)
		// Reading the clock costs ~20ns; once every 16 rows is precise enough for a
		// millisecond-scale bound.
		if n&15 == 0 && b.now().Sub(start) >= b.cfg.MaxWait {
			return FlushWait, false, nil
		}
	}
}

// atPreferred says whether a batch of k rows is at a preferred size that the rows queued
// would not carry to a larger one. *pi is the index of the smallest preferred size not
// below the previous k; batches only grow, so it only moves forward.
func (b *Batcher[T]) atPreferred(k int, pi *int) bool {
	pref := b.cfg.PreferredSizes
	for *pi < len(pref) && pref[*pi] < k {
		*pi++
	}
	i := *pi
	return i < len(pref) && pref[i] == k && (i+1 == len(pref) || pref[i+1] > k+len(b.in))
}

// holdTarget applies the adaptive rule to a batch of n rows that would be cut now: the size
// worth holding it open for, 0 for none.
func (b *Batcher[T]) holdTarget(n int) (target int, stall time.Duration) {
	if !b.cfg.Adaptive {
		return 0, 0
	}
	return b.load.holdTarget(n, b.cfg.MaxSize, b.cfg.TargetUtilisation, b.cfg.PreferredSizes)
}

// holdResult says how waiting for the next row of a held batch ended.
type holdResult int

const (
	holdGotRow   holdResult = iota
	holdClosed              // the input was closed
	holdStalled             // no row came within the stall time: the arrivals stopped
	holdExpired             // the batch's first row has waited MaxWait
	holdCanceled            // ctx ended
)

const (
	// holdSleepAbove is the time left above which a hold sleeps on a timer rather than
	// polling, and holdTimerSlack what it leaves for polling after the timer: Go timers
	// below a millisecond fire about a millisecond late on Linux (when the process is
	// otherwise idle the runtime waits in epoll with millisecond resolution).
	holdSleepAbove = 2 * time.Millisecond
	holdTimerSlack = time.Millisecond
)

// await waits for the next row of a held batch until deadline, or until stall has passed
// without one.
func (b *Batcher[T]) await(ctx context.Context, deadline time.Time, stall time.Duration, timer *time.Timer) (T, holdResult) {
	var zero T
	now := b.now()
	limit, onLimit := now.Add(stall), holdStalled
	if !deadline.After(limit) {
		limit, onLimit = deadline, holdExpired
	}
	for {
		left := limit.Sub(now)
		if left <= 0 {
			return zero, onLimit
		}
		if left > holdSleepAbove {
			timer.Reset(left - holdTimerSlack)
			select {
			case r := <-b.urgent:
				timer.Stop()
				return r, holdGotRow
			case r, ok := <-b.in:
				timer.Stop()
				return r, received(ok)
			case <-ctx.Done():
				timer.Stop()
				return zero, holdCanceled
			case <-timer.C:
			}
		} else {
			select {
			case r := <-b.urgent:
				return r, holdGotRow
			case r, ok := <-b.in:
				return r, received(ok)
			case <-ctx.Done():
				return zero, holdCanceled
			default:
				runtime.Gosched()
			}
		}
		now = b.now()
	}
}

func received(ok bool) holdResult {
	if ok {
		return holdGotRow
	}
	return holdClosed
}
