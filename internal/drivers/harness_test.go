package drivers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// realBrokers returns the Apache Kafka broker of `make test` (STREAMSCORE_TEST_BROKERS), or
// skips the test, saying so.
func realBrokers(t *testing.T) []string {
	t.Helper()
	v := os.Getenv("STREAMSCORE_TEST_BROKERS")
	if v == "" {
		t.Skip("SKIPPED: integration test needs a real Apache Kafka broker: set STREAMSCORE_TEST_BROKERS (make test does)")
	}
	return config.SplitList(v)
}

// embeddedBroker starts the in-process kfake broker for fast tests.
func embeddedBroker(t *testing.T) []string {
	t.Helper()
	b, err := topics.NewEmbeddedBroker(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addrs()
}

// testConfig is streamscore.yaml with the given brokers and topic and group names unique
// to this test.
func testConfig(t testing.TB, brokers []string) *config.Config {
	t.Helper()
	c, err := config.Load("../../streamscore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%s-%08x", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), rand.Uint32())
	c.Kafka.Brokers = brokers
	c.Group = "g-" + id
	c.Topics.Input = []string{"tx-" + id}
	c.Topics.Labels = "labels-" + id
	c.Topics.Predictions = "preds-" + id
	c.Topics.Alerts = "alerts-" + id
	c.Topics.DeadLetter = "dlq-" + id
	c.Topics.Backfill = "backfill-" + id
	c.Topics.Shadow = "shadow-" + id
	c.Topics.Drift = "drift-" + id
	// absolute: some tests write this config into a temporary folder
	if c.Drift.Reference, err = filepath.Abs(c.Resolve(c.Drift.Reference)); err != nil {
		t.Fatal(err)
	}
	c.Registry.Topic = "models-" + id
	c.Metrics.Address = ""
	c.CommitInterval = 200 * time.Millisecond
	// Tests write events and labels in bursts with pauses between them: a silent labels
	// partition should stop holding events back sooner than in production.
	c.Feedback.IdleTimeout = 200 * time.Millisecond
	return c
}

func createInputTopics(t testing.TB, c *config.Config, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.EnsureTopics(ctx, -1,
		topics.TopicSpec{Name: c.Topics.Input[0], Partitions: partitions},
		topics.TopicSpec{Name: c.Topics.Labels, Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
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

func produceT(t testing.TB, c *config.Config, n int, bad float64, seed uint64) sim.ProduceResult {
	t.Helper()
	return produceAt(t, c, n, 0, bad, seed)
}

// produceAt produces n events of a new simulation at rate events/s (0: as fast as
// possible), and their labels.
func produceAt(t testing.TB, c *config.Config, n int, rate, bad float64, seed uint64) sim.ProduceResult {
	t.Helper()
	return produceStream(t, c, sim.NewStream(seed, bad), n, rate, false)
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
// finalOutputs, once every writer has stopped.
func awaitScored(t *testing.T, c *config.Config, want int64) {
	t.Helper()
	a := audit.NewOutputs(c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	r, err := topics.NewReader(c.Kafka, true, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for a.Scored() < want {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d of %d input records have an output", a.Scored(), want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		recs, _ := r.Fetch(ctx) // a timeout just means nothing arrived this second
		cancel()
		a.Add(recs)
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

// report logs a result line and appends it to $STREAMSCORE_TEST_REPORT, which make test
// prints after the run, so CI's output shows the counts of the fault and audit tests.
func report(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	p := os.Getenv("STREAMSCORE_TEST_REPORT")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("test report: %v", err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s: %s\n", t.Name(), line); err != nil {
		t.Errorf("test report: %v", err)
	}
}
