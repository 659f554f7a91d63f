package scorer

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// spin busy-waits for d: a simulated flush cost more precise than time.Sleep, whose
// sub-millisecond sleeps last about a millisecond. It yields between clock readings: a
// goroutine readied meanwhile (a producer that the batcher unblocked) waits in this
// processor's run queue, and on a small machine a hot loop would hold it up for hundreds of
// microseconds, where a cgo call into ONNX Runtime would let it run.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
		runtime.Gosched()
	}
}

// BenchmarkBatcher pushes b.N rows through the batcher into a flush function that
// busy-waits 3µs + 1µs·n, the cost of a small model, greedy and adaptive, with the producer
// as fast as the queue lets it (saturated) or paced at a fixed rate (open loop). It reports
// the throughput (rows/s), the mean batch (rows/batch), the mean latency from a row's
// arrival (its scheduled time when paced) to the end of its flush (latency-µs), and the
// share of the wall time spent in the flush function (busy-%). Capacity is about 1M rows/s
// in batches of 1024, 250k rows/s in batches of one.
func BenchmarkBatcher(b *testing.B) {
	for _, load := range []struct {
		name string
		rate float64 // rows/s; 0: as fast as Submit goes
	}{{"saturated", 0}, {"paced-500k", 500e3}, {"paced-250k", 250e3}, {"paced-20k", 20e3}} {
		for _, adaptive := range []bool{false, true} {
			mode := "greedy"
			if adaptive {
				mode = "adaptive"
			}
			b.Run(load.name+"/"+mode, func(b *testing.B) { benchmarkBatcher(b, adaptive, load.rate) })
		}
	}
}

func benchmarkBatcher(b *testing.B, adaptive bool, rate float64) {
	base := time.Now()
	var batches, rows int
	var latency, busy time.Duration // only the Run goroutine writes them before Run returns
	bt, err := NewBatcher(BatcherConfig{MaxSize: 1024, Adaptive: adaptive}, func(_ context.Context, batch Batch[time.Duration]) error {
		start := time.Now()
		spin(3*time.Microsecond + time.Duration(len(batch.Rows))*time.Microsecond)
		end := time.Now()
		busy += end.Sub(start)
		at := end.Sub(base)
		for _, arrived := range batch.Rows {
			latency += at - arrived
		}
		batches++
		rows += len(batch.Rows)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { done <- bt.Run(ctx) }()
	for i := 0; i < b.N; i++ {
		arrival := time.Since(base)
		if rate > 0 {
			due := start.Sub(base) + time.Duration(float64(i)/rate*float64(time.Second))
			for arrival < due {
				runtime.Gosched() // a hot loop would delay the batcher's wake-up: see spin
				arrival = time.Since(base)
			}
			arrival = due
		}
		if err := bt.Submit(ctx, arrival); err != nil {
			b.Fatal(err)
		}
	}
	bt.CloseInput()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(rows)/float64(batches), "rows/batch")
	b.ReportMetric(latency.Seconds()*1e6/float64(rows), "latency-µs")
	b.ReportMetric(100*busy.Seconds()/elapsed.Seconds(), "busy-%")
}

// BenchmarkBatcherOverhead is the batcher's own cost per row, Submit on one goroutine and
// collection on Run's, into a flush function that does nothing: it must not allocate.
func BenchmarkBatcherOverhead(b *testing.B) {
	for _, adaptive := range []bool{false, true} {
		b.Run(fmt.Sprintf("adaptive=%v", adaptive), func(b *testing.B) {
			bt, err := NewBatcher(BatcherConfig{Adaptive: adaptive}, func(context.Context, Batch[int]) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			done := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			go func() { done <- bt.Run(ctx) }()
			for i := 0; i < b.N; i++ {
				if err := bt.Submit(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
			bt.CloseInput()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
