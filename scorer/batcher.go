package scorer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// FlushReason says why the batcher closed a batch.
type FlushReason int

const (
	// FlushSize: the batch reached MaxSize rows.
	FlushSize FlushReason = iota
	// FlushIdle: the queue ran empty, so waiting longer would only add latency. This is
	// what keeps a lightly loaded pipeline at batch size one with no added wait.
	FlushIdle
	// FlushWait: rows kept arriving one by one, never filling MaxSize, and the oldest row
	// had waited MaxWait.
	FlushWait
	// FlushClose: the input was closed; the last partial batch goes out.
	FlushClose
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
	}
	return fmt.Sprintf("FlushReason(%d)", int(r))
}

// BatcherConfig tunes the micro-batcher.
type BatcherConfig struct {
	// MaxSize is the largest batch handed to the flush function (default 1024).
	MaxSize int
	// MaxWait bounds how long the first row of a batch waits for more rows while rows keep
	// trickling in (default 2ms). It never makes an idle queue wait: see FlushIdle.
	MaxWait time.Duration
	// QueueSize is the number of rows that may wait for the batcher; Submit blocks when it
	// is full, which is how a slow scorer pushes back on the fetch loop (default 4*MaxSize).
	QueueSize int
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
	switch {
	case c.MaxSize < 1:
		return fmt.Errorf("batch max_size %d: must be at least 1", c.MaxSize)
	case c.MaxWait < 0:
		return fmt.Errorf("batch max_wait %v: must not be negative", c.MaxWait)
	case c.QueueSize < 1:
		return fmt.Errorf("batch queue_size %d: must be at least 1", c.QueueSize)
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
// flushes are serial and in order, per-source order is kept end to end.
//
// The flush rules are, in order: a batch is flushed when it reaches MaxSize; when the queue
// is empty (idle: no point waiting); and when its first row has waited MaxWait while rows
// kept coming. Under saturation the queue fills while the previous batch is scored, so
// batches grow to MaxSize by themselves; when idle, a single row is flushed at once.
type Batcher[T any] struct {
	cfg   BatcherConfig
	in    chan T
	flush func(context.Context, Batch[T]) error
	now   func() time.Time
}

// ErrBatcherClosed is returned by Submit after CloseInput.
var ErrBatcherClosed = errors.New("batcher input closed")

// NewBatcher validates cfg and returns a batcher that calls flush for each batch.
func NewBatcher[T any](cfg BatcherConfig, flush func(context.Context, Batch[T]) error) (*Batcher[T], error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Batcher[T]{cfg: cfg, in: make(chan T, cfg.QueueSize), flush: flush, now: time.Now}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (b *Batcher[T]) Config() BatcherConfig { return b.cfg }

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
// (ctx's error; queued rows are not flushed) or flush fails (its error).
func (b *Batcher[T]) Run(ctx context.Context) error {
	rows := make([]T, 0, b.cfg.MaxSize)
	for {
		var first T
		var ok bool
		select {
		case first, ok = <-b.in:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		start := b.now()
		rows = append(rows[:0], first)
		reason, closed := b.collect(&rows, start)
		if err := b.flush(ctx, Batch[T]{Rows: rows, Reason: reason, Oldest: start}); err != nil {
			return err
		}
		clear(rows) // drop references held by the rows so they can be collected
		if closed {
			return nil
		}
	}
}

// collect drains the queue into rows without blocking, up to MaxSize.
func (b *Batcher[T]) collect(rows *[]T, start time.Time) (FlushReason, bool) {
	for n := 1; ; n++ {
		if len(*rows) >= b.cfg.MaxSize {
			return FlushSize, false
		}
		select {
		case r, ok := <-b.in:
			if !ok {
				return FlushClose, true
			}
			*rows = append(*rows, r)
		default:
			return FlushIdle, false
		}
		// Reading the clock costs ~20ns; once every 16 rows is precise enough for a
		// millisecond-scale bound.
		if n&15 == 0 && b.now().Sub(start) >= b.cfg.MaxWait {
			return FlushWait, false
		}
	}
}
