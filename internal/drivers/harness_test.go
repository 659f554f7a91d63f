package drivers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/topics"
)

// The helpers of both tiers: the fast tests run on the embedded broker, the integration
// tests (harness_integration_test.go, built with -tags integration) on Apache Kafka.

// testConfig is streamscore.yaml with the given brokers and topic and group names unique
// to this test (testenv.Name's scheme).
func testConfig(t testing.TB, brokers []string) *config.Config {
	t.Helper()
	c, err := config.Load("../../streamscore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	id := testenv.Name(t, "t")
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
	// A broker answers CreateTopics before its metadata lists the new topic (KRaft
	// propagates it asynchronously): a driver started at once may find no topic. Wait
	// until the metadata has every partition.
	testenv.Eventually(t, time.Minute, func() error {
		got, err := adm.Partitions(ctx, c.Topics.Input[0], c.Topics.Labels)
		if err != nil {
			return fmt.Errorf("new topics not in the metadata yet: %w", err)
		}
		if got[c.Topics.Input[0]] != partitions || got[c.Topics.Labels] != partitions {
			return fmt.Errorf("new topics have %v partitions in the metadata, want %d", got, partitions)
		}
		return nil
	})
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

// produceStream continues st: n events at rate events/s (0: as fast as possible); hold
// keeps the labels not yet due for the next call.
func produceStream(t testing.TB, c *config.Config, st *sim.Stream, n int, rate float64, hold bool) sim.ProduceResult {
	t.Helper()
	res, err := produce(c, st, n, rate, hold)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// produce is produceStream for any goroutine: it returns its error.
func produce(c *config.Config, st *sim.Stream, n int, rate float64, hold bool) (sim.ProduceResult, error) {
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		return sim.ProduceResult{}, err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return sim.Produce(ctx, p, sim.ProduceOptions{Events: n, Rate: rate, Stream: st, HoldLabels: hold, Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
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
