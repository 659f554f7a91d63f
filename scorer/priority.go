package scorer

import (
	"context"
	"errors"
)

// Urgent rows.
//
// A row submitted with SubmitUrgent (a synchronous request waiting for its answer) is
// taken before every row queued with Submit (a stream, which may be catching up with a
// full queue): it goes into the batch being collected, or the next one, instead of waiting
// behind QueueSize stream rows. Urgent rows keep their order among themselves, stream
// rows keep theirs, and the flush rules are the same for both; only which queue is read
// first changes. Its queue holds MaxSize rows; SubmitUrgent blocks beyond that, which
// bounds what requests can add to a batch just as QueueSize bounds the stream.

// ErrBatcherStopped is returned by SubmitUrgent once Run has returned.
var ErrBatcherStopped = errors.New("batcher stopped")

// SubmitUrgent queues one row ahead of the rows queued with Submit, blocking while the
// urgent queue is full. It returns ctx's error if ctx ends first, and ErrBatcherStopped
// once Run has returned. Unlike Submit it may be called after CloseInput: Run takes the
// urgent rows queued before the input is drained into its last batch, and a row queued
// after that is never flushed, which the caller learns from Stopped. Safe for concurrent
// use.
func (b *Batcher[T]) SubmitUrgent(ctx context.Context, row T) error {
	select {
	case <-b.stopped:
		return ErrBatcherStopped
	default:
	}
	select {
	case b.urgent <- row:
		return nil
	case <-b.stopped:
		return ErrBatcherStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stopped is closed when Run returns: urgent rows still queued then are not flushed.
func (b *Batcher[T]) Stopped() <-chan struct{} { return b.stopped }

// QueuedUrgent is the number of urgent rows waiting.
func (b *Batcher[T]) QueuedUrgent() int { return len(b.urgent) }

// poll takes the next row without waiting, an urgent one first. got is false when both
// queues are empty; ok is false when the input is closed and no urgent row is waiting.
func (b *Batcher[T]) poll() (r T, ok, got bool) {
	select {
	case r = <-b.urgent:
		return r, true, true
	default:
	}
	select {
	case r, ok = <-b.in:
		return r, ok, true
	default:
		return r, false, false
	}
}
