package drivers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// The live job and the output wait of both tiers: the fast tier runs them on the
// embedded broker, the integration tier on Apache Kafka.

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

// awaitScored reads the output topics until want input records have a prediction or a
// dead letter, within a generous deadline. It only waits: the verdict is taken on
// finalOutputs, once every writer has stopped. A fetch that fails for any other reason
// than a second without records fails the test at once, saying why.
func awaitScored(t *testing.T, c *config.Config, want int64) {
	t.Helper()
	a := audit.NewOutputs(c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	r, err := topics.NewReader(c.Kafka, topics.FromStart, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
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
