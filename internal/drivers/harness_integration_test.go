//go:build integration

package drivers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// realBrokers returns the Apache Kafka broker of `make test` (testenv.Brokers).
func realBrokers(t *testing.T) []string {
	t.Helper()
	return testenv.Brokers(t)
}

// liveJob is a live scoring job running in the test.
type liveJob struct {
	stats *pipeline.Stats
	reg   *prometheus.Registry
	stop  func() error
}

func startLive(t *testing.T, c *config.Config, log *zap.Logger) *liveJob {
	t.Helper()
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	stats := &pipeline.Stats{}
	reg := prometheus.NewRegistry()
	l, err := NewLive(context.Background(), cc, LiveDeps{Registry: reg, Logger: log, Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("live job did not stop within a minute")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping live job: %v", err)
		}
	})
	return &liveJob{stats: stats, reg: reg, stop: stop}
}

// produced is the outcome of a produce call run on a goroutine of its own, which must
// not call t.Fatal: the test goroutine receives it and judges.
type produced struct {
	res sim.ProduceResult
	err error
}

// produceAsync runs produce on a goroutine; the channel receives its outcome.
func produceAsync(c *config.Config, st *sim.Stream, n int, rate float64) <-chan produced {
	ch := make(chan produced, 1)
	go func() {
		res, err := produce(c, st, n, rate, false)
		ch <- produced{res, err}
	}()
	return ch
}

// result is the outcome of produceAsync, failing t on an error.
func result(t testing.TB, ch <-chan produced) sim.ProduceResult {
	t.Helper()
	p := <-ch
	if p.err != nil {
		t.Fatalf("producing: %v", p.err)
	}
	return p.res
}

// awaitScored reads the output topics until want input records have a prediction or a
// dead letter, within a generous deadline. It only waits: the verdict is taken on
// finalOutputs, once every writer has stopped. A fetch that fails for any other reason
// than a second without records fails the test at once, saying why.
func awaitScored(t *testing.T, c *config.Config, want int64) {
	t.Helper()
	a := audit.NewOutputs(c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	r, err := topics.NewReader(c.Kafka, true, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var broken error
	testenv.Eventually(t, 3*time.Minute, func() error {
		if broken != nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		recs, err := r.Fetch(ctx)
		cancel()
		a.Add(recs)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) { // a timeout: nothing arrived this second
			broken = err
			return nil
		}
		if a.Scored() < want {
			return fmt.Errorf("%d of %d input records have an output", a.Scored(), want)
		}
		return nil
	})
	if broken != nil {
		t.Fatalf("reading the outputs (%d of %d input records have one so far): %v", a.Scored(), want, broken)
	}
}

// finalOutputs counts the output topics read to their end offsets. Called once every job
// that writes them has stopped, it sees everything they wrote, late duplicates included,
// however slow the machine: no quiet period decides when counting ends.
func finalOutputs(t *testing.T, c *config.Config) *audit.Outputs {
	t.Helper()
	a := audit.NewOutputs(c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := a.ReadToEnd(ctx, c.Kafka); err != nil {
		t.Fatalf("reading the outputs to their end: %v", err)
	}
	return a
}

func behind(t testing.TB, c *config.Config) int64 {
	t.Helper()
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := adm.Behind(ctx, c.Group, c.Topics.Input...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// batchSizeBuckets returns the non-empty buckets of the streamscore_batch_size histogram.
func batchSizeBuckets(t *testing.T, reg *prometheus.Registry) map[float64]uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[float64]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "streamscore_batch_size" {
			continue
		}
		var prev uint64
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			if n := b.GetCumulativeCount() - prev; n > 0 {
				out[b.GetUpperBound()] = n
			}
			prev = b.GetCumulativeCount()
		}
	}
	return out
}

// waitBound marks a test that waits on brokers, session timeouts and restarts far more
// than it computes, and shares nothing with the others (its own topics, group, broker or
// cluster): it runs in parallel with the other such tests, after the package's serial
// tests, which keeps the suite's wall time down on a 2-core CI machine. The cluster
// tests, the broker restart, the SASL_SSL test and the distributed backfill are marked.
func waitBound(t *testing.T) {
	t.Helper()
	t.Parallel()
}

// counterValue sums a counter's samples in a registry.
func counterValue(t *testing.T, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
