package scorer

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// catchUp is a stream catching up (its queue always full) plus synchronous requests of
// one row each at a fixed rate, on a simulated clock: a flush of n rows costs
// 50µs + 2µs·n, so a full batch of 1024 takes about 2.1ms.
type catchUp struct {
	b        *Batcher[int]
	now      time.Time
	urgent   bool
	streamN  int             // stream rows left to submit
	arrivals []time.Duration // request arrival times
	sent     int             // requests submitted
	latency  []time.Duration // per request: arrival to the end of the flush that scored it
}

const requestRow = -1 // rows < 0 are requests: -1 - index

func (c *catchUp) start() time.Time { return time.Unix(0, 0) }

func (c *catchUp) flush(_ context.Context, batch Batch[int]) error {
	c.now = c.now.Add(50*time.Microsecond + time.Duration(len(batch.Rows))*2*time.Microsecond)
	for _, r := range batch.Rows {
		if r <= requestRow {
			c.latency[requestRow-r] = c.now.Sub(c.start()) - c.arrivals[requestRow-r]
		}
	}
	c.feed()
	return nil
}

// feed submits the requests that have arrived, then tops the stream's queue up, as the
// fetch loop does while a batch is scored.
func (c *catchUp) feed() {
	ctx := context.Background()
	for c.sent < len(c.arrivals) && c.now.Sub(c.start()) >= c.arrivals[c.sent] {
		submit := c.b.Submit
		if c.urgent {
			submit = c.b.SubmitUrgent
		}
		if c.b.Queued() == c.b.cfg.QueueSize && !c.urgent {
			break // a plain request waits for a free slot, like the stream
		}
		if err := submit(ctx, requestRow-c.sent); err != nil {
			panic(err) // cannot happen: there is room
		}
		c.sent++
	}
	for c.streamN > 0 && c.b.Queued() < c.b.cfg.QueueSize {
		if err := c.b.Submit(ctx, c.streamN); err != nil {
			panic(err)
		}
		c.streamN--
	}
	if c.streamN == 0 && c.sent == len(c.arrivals) {
		c.b.CloseInput()
		c.streamN = -1
	}
}

// runCatchUp scores 100k stream rows and a request every millisecond, urgent or not, and
// returns the requests' latencies, sorted.
func runCatchUp(t *testing.T, urgent bool) []time.Duration {
	t.Helper()
	c := &catchUp{urgent: urgent, streamN: 100_000}
	c.now = c.start()
	for i := range 150 {
		c.arrivals = append(c.arrivals, time.Duration(i)*time.Millisecond+300*time.Microsecond)
	}
	c.latency = make([]time.Duration, len(c.arrivals))
	b, err := NewBatcher(BatcherConfig{MaxSize: 1024, QueueSize: 4096}, c.flush)
	if err != nil {
		t.Fatal(err)
	}
	b.now = func() time.Time { return c.now }
	c.b = b
	c.feed()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Run(ctx); err != nil {
		t.Fatal(err)
	}
	slices.Sort(c.latency)
	return c.latency
}

func quantile(d []time.Duration, q float64) time.Duration { return d[int(q*float64(len(d)-1))] }

// TestUrgentRowsSkipACatchUp measures, in virtual time, what a catch-up does to request
// latency: without priority a request waits behind the stream's full queue (4 batches of
// 1024, about 4 flushes); as an urgent row it goes into the next batch, so it waits at
// most for the batch being scored and its own.
func TestUrgentRowsSkipACatchUp(t *testing.T) {
	const fullFlush = 50*time.Microsecond + 1024*2*time.Microsecond
	plain := runCatchUp(t, false)
	urgent := runCatchUp(t, true)
	t.Logf("request latency during a catch-up: plain p50 %v p99 %v; urgent p50 %v p99 %v",
		quantile(plain, 0.5), quantile(plain, 0.99), quantile(urgent, 0.5), quantile(urgent, 0.99))
	if got := quantile(urgent, 1); got > 2*fullFlush {
		t.Errorf("urgent max latency %v: want at most two full flushes (%v)", got, 2*fullFlush)
	}
	if got := quantile(plain, 0.5); got < 4*fullFlush {
		t.Errorf("plain p50 latency %v: the model of a catch-up is wrong, want at least 4 full flushes (%v)", got, 4*fullFlush)
	}
}

func TestSubmitUrgentAfterRunReturns(t *testing.T) {
	b, out := newTestBatcher(t, BatcherConfig{MaxSize: 4})
	_, done := runBatcher(t, b)
	if err := b.SubmitUrgent(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	if f := next(t, out); !slices.Equal(f.rows, []int{7}) {
		t.Fatalf("flushed %v, want [7]", f.rows)
	}
	b.CloseInput()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for runBatcher's cleanup
	if err := b.SubmitUrgent(context.Background(), 8); !errors.Is(err, ErrBatcherStopped) {
		t.Fatalf("SubmitUrgent after Run returned: %v, want ErrBatcherStopped", err)
	}
}
