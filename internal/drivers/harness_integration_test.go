//go:build integration

package drivers

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/topics"
)

// realBrokers returns the Apache Kafka broker of `make test` (testenv.Brokers).
func realBrokers(t *testing.T) []string {
	t.Helper()
	return testenv.Brokers(t)
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
