package scorer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type flushed struct {
	rows   []int
	reason FlushReason
}

func newTestBatcher(t *testing.T, cfg BatcherConfig) (*Batcher[int], chan flushed) {
	t.Helper()
	out := make(chan flushed, 1000)
	b, err := NewBatcher(cfg, func(_ context.Context, b Batch[int]) error {
		out <- flushed{rows: append([]int(nil), b.Rows...), reason: b.Reason}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

func next(t *testing.T, ch chan flushed) flushed {
	t.Helper()
	select {
	case f := <-ch:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no batch flushed")
		return flushed{}
	}
}

func runBatcher(t *testing.T, b *Batcher[int]) (context.CancelFunc, chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel, done
}

func TestBatcherFlushesAtMaxSize(t *testing.T) {
	b, out := newTestBatcher(t, BatcherConfig{MaxSize: 10, MaxWait: time.Hour, QueueSize: 100})
	for i := 0; i < 25; i++ {
		if err := b.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	runBatcher(t, b)
	want := []struct {
		n      int
		reason FlushReason
	}{{10, FlushSize}, {10, FlushSize}, {5, FlushIdle}}
	seen := 0
	for _, w := range want {
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
}

// An idle queue flushes a single row at once: low load adds no wait. MaxWait is an hour,
// so a batcher that waited for it would never flush within the test.
func TestBatcherIdleFlushesAtOnce(t *testing.T) {
	b, out := newTestBatcher(t, BatcherConfig{MaxSize: 1000, MaxWait: time.Hour})
	runBatcher(t, b)
	for i := 0; i < 3; i++ {
		if err := b.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
		f := next(t, out)
		if len(f.rows) != 1 || f.rows[0] != i || f.reason != FlushIdle {
			t.Fatalf("got %+v, want row %d alone, flushed idle", f, i)
		}
	}
}

// When rows keep arriving, MaxWait cuts the batch. A fake clock advancing 1ms per reading
// makes this exact: the clock is read at the first row and every 16 rows.
func TestBatcherMaxWait(t *testing.T) {
	b, out := newTestBatcher(t, BatcherConfig{MaxSize: 1000, MaxWait: 5 * time.Millisecond, QueueSize: 200})
	var mu sync.Mutex
	now := time.Unix(0, 0)
	b.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
	for i := 0; i < 200; i++ {
		if err := b.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	runBatcher(t, b)
	f := next(t, out)
	if f.reason != FlushWait || len(f.rows) != 81 {
		t.Fatalf("first batch: %d rows (%v), want 81 rows (the first, then 5 clock readings of 16 more) cut by max wait", len(f.rows), f.reason)
	}
}

func TestBatcherCloseFlushesTheRest(t *testing.T) {
	b, out := newTestBatcher(t, BatcherConfig{MaxSize: 4})
	for i := 0; i < 6; i++ {
		if err := b.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	b.CloseInput()
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	f1, f2 := next(t, out), next(t, out)
	if len(f1.rows)+len(f2.rows) != 6 || f2.reason != FlushClose {
		t.Fatalf("got %+v then %+v", f1, f2)
	}
}

// A full queue blocks Submit (backpressure) until ctx ends.
func TestBatcherSubmitBlocksWhenFull(t *testing.T) {
	b, _ := newTestBatcher(t, BatcherConfig{MaxSize: 1, QueueSize: 2})
	for i := 0; i < 2; i++ {
		if err := b.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Submit(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full queue = %v, want it to block until the deadline", err)
	}
}

func TestBatcherFlushErrorStopsRun(t *testing.T) {
	boom := errors.New("boom")
	b, err := NewBatcher(BatcherConfig{}, func(context.Context, Batch[int]) error { return boom })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Submit(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the flush error", err)
	}
}

func TestBatcherConfigValidation(t *testing.T) {
	for _, c := range []BatcherConfig{{MaxSize: -1}, {MaxWait: -time.Second}, {QueueSize: -3}} {
		if _, err := NewBatcher(c, func(context.Context, Batch[int]) error { return nil }); err == nil {
			t.Errorf("NewBatcher(%+v) accepted", c)
		}
	}
}
