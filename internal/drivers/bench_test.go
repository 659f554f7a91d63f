//go:build integration

package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
)

// BenchmarkCatchUpVsBackfill measures, on the real broker, the live pipeline catching up on
// N pre-produced events from offset zero (until the last output is acknowledged) and the
// backfill of the same events into a topic and into a file. Run it with make bench; it
// prints events/s for each.
func BenchmarkCatchUpVsBackfill(b *testing.B) {
	brokers := benchBrokers(b)
	const n = 500_000
	c := testConfig(b, brokers)
	createInputTopics(b, c, 3)
	produceAt(b, c, n, 0, 0, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stats := &pipeline.Stats{}
		cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		l, err := NewLive(context.Background(), cc, LiveDeps{Registry: prometheus.NewRegistry(), Logger: zap.NewNop(), Stats: stats})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		for stats.Done.Load() < n {
			select {
			case err := <-done:
				b.Fatalf("live job stopped: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		catchUp := time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		c.Group += "x" // the next iteration catches up from zero again

		bt, err := Backfill(context.Background(), cc, BackfillOptions{Out: "topic:" + c.Topics.Backfill, BatchSize: 256}, zap.NewNop(), io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		bf, err := Backfill(context.Background(), cc, BackfillOptions{Out: "file:" + filepath.Join(b.TempDir(), "bf.jsonl"), BatchSize: 256}, zap.NewNop(), io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/catchUp.Seconds(), "catchup_events/s")
		b.ReportMetric(bt.EventsPerSecond, "backfill_topic_events/s")
		b.ReportMetric(bf.EventsPerSecond, "backfill_file_events/s")
		b.Logf("%d events: live catch-up %.0f events/s (mean batch %.0f); backfill to a topic %.0f events/s, to a file %.0f events/s",
			n, float64(n)/catchUp.Seconds(), float64(stats.Rows.Load())/float64(stats.Batches.Load()), bt.EventsPerSecond, bf.EventsPerSecond)
	}
}

func benchBrokers(b *testing.B) []string {
	b.Helper()
	return testenv.Brokers(b)
}

// BenchmarkPeakRSSCatchUp runs the streamscore binary on a backlog of 1M events (an offered
// load far above what it can score: everything is there at once) and reports the peak
// resident memory of the process (VmHWM) once it has caught up.
func BenchmarkPeakRSSCatchUp(b *testing.B) {
	brokers := benchBrokers(b)
	const n = 1_000_000
	c := testConfig(b, brokers)
	createInputTopics(b, c, 3)
	produceAt(b, c, n, 0, 0, 1)
	c.Metrics.Address = "127.0.0.1:0"
	bin := buildBinary(b)
	logf, err := os.Create(filepath.Join(b.TempDir(), "run.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Group += "x"
		cfg := writeConfig(b, c)
		start := time.Now()
		cmd := startProcess(b, bin, cfg, logf)
		testenv.Eventually(b, 5*time.Minute, func() error {
			if n := behind(b, c); n > 0 {
				return fmt.Errorf("not caught up: %d records behind", n)
			}
			return nil
		})
		elapsed := time.Since(start)
		hwm, err := peakRSSOf(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatalf("exit after SIGTERM: %v", err)
		}
		b.ReportMetric(float64(hwm)/(1<<20), "peak_RSS_MiB")
		b.ReportMetric(n/elapsed.Seconds(), "events/s_incl_startup")
		b.Logf("%d-event backlog: peak RSS %.0f MiB, caught up in %v", n, float64(hwm)/(1<<20), elapsed.Round(time.Millisecond))
	}
}

// peakRSSOf is the peak resident memory (VmHWM) of process pid, from /proc (Linux).
func peakRSSOf(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM")
}
