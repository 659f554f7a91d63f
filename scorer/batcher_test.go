package scorer

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want nil or context.Canceled", err)
		}
	})
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

func TestFlushReasonNames(t *testing.T) {
	for r, want := range map[FlushReason]string{
		FlushSize: "size", FlushIdle: "idle", FlushWait: "wait", FlushClose: "close",
		FlushPreferred: "preferred", FlushTarget: "target", FlushReason(99): "FlushReason(99)",
	} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(r), r.String(), want)
		}
	}
}

// The zero config keeps the old behaviour (no holding, no preferred sizes) and fills the new
// knobs with their documented defaults; preferred sizes are sorted in a copy.
func TestBatcherConfigDefaults(t *testing.T) {
	b, _ := newTestBatcher(t, BatcherConfig{})
	c := b.Config()
	if c.MaxSize != 1024 || c.MaxWait != 2*time.Millisecond || c.QueueSize != 4096 ||
		c.Adaptive || c.TargetUtilisation != 0.9 || c.Smoothing != 0.05 || c.PreferredSizes != nil {
		t.Fatalf("defaults: %+v", c)
	}
	mine := []int{64, 8, 1024}
	b, _ = newTestBatcher(t, BatcherConfig{PreferredSizes: mine})
	if got := b.Config().PreferredSizes; !slices.Equal(got, []int{8, 64, 1024}) || !slices.Equal(mine, []int{64, 8, 1024}) {
		t.Fatalf("preferred sizes in effect %v (want sorted), caller's slice now %v (want untouched)", got, mine)
	}
	b.Config().PreferredSizes[0] = 5
	if b.Config().PreferredSizes[0] != 8 {
		t.Fatal("Config hands out the batcher's own slice")
	}
}

func TestBatcherConfigValidationMessages(t *testing.T) {
	for _, tc := range []struct {
		cfg  BatcherConfig
		want string // part of the error that says what to fix
	}{
		{BatcherConfig{PreferredSizes: []int{0, 8}}, "size 0 must be at least 1"},
		{BatcherConfig{MaxSize: 64, PreferredSizes: []int{8, 128}}, "larger than max_size 64: raise max_size or drop it"},
		{BatcherConfig{PreferredSizes: []int{8, 16, 8}}, "size 8 is listed twice"},
		{BatcherConfig{TargetUtilisation: -0.5}, "target_utilisation -0.5: must be within (0, 1]"},
		{BatcherConfig{TargetUtilisation: 1.5}, "target_utilisation 1.5: must be within (0, 1]"},
		{BatcherConfig{TargetUtilisation: math.NaN()}, "target_utilisation NaN"},
		{BatcherConfig{Smoothing: 2}, "smoothing 2: must be within (0, 1]"},
		{BatcherConfig{Smoothing: math.NaN()}, "smoothing NaN"},
	} {
		_, err := NewBatcher(tc.cfg, func(context.Context, Batch[int]) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewBatcher(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

// Submit and the collection of rows allocate nothing per row, held batches included.
func TestBatcherDoesNotAllocatePerRow(t *testing.T) {
	for _, adaptive := range []bool{false, true} {
		var flushedRows atomic.Int64
		b, err := NewBatcher(BatcherConfig{MaxSize: 64, Adaptive: adaptive}, func(_ context.Context, batch Batch[int]) error {
			flushedRows.Add(int64(len(batch.Rows)))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		runBatcher(t, b)
		const perRun = 1000
		submitted := int64(0)
		allocs := testing.AllocsPerRun(20, func() {
			for i := range perRun {
				if err := b.Submit(context.Background(), i); err != nil {
					panic(err)
				}
			}
			submitted += perRun
			for flushedRows.Load() < submitted {
				runtime.Gosched()
			}
		})
		if allocs >= 1 {
			t.Errorf("adaptive=%v: %.1f allocations per %d rows submitted and flushed, want none", adaptive, allocs, perRun)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		runtime.Gosched()
	}
}
