//go:build !integration

package drivers

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/config"
)

// TestDemoEndToEnd runs the demo driver on the embedded broker: every event gets exactly
// one prediction or dead letter, every injected bad event is dead-lettered, and the final
// commit covers the whole input.
func TestDemoEndToEnd(t *testing.T) {
	c, err := config.Load("../../streamscore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Log.Level = "error"
	c.Metrics.Address = ""
	brokers, group := slices.Clone(c.Kafka.Brokers), c.Group
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Demo(ctx, c, DemoOptions{Events: 8000, BadFraction: 0.02, Seed: 3, Timeout: time.Minute}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Kafka.Brokers, brokers) || c.Group != group {
		t.Errorf("Demo changed the caller's config: brokers %v group %q, were %v %q", c.Kafka.Brokers, c.Group, brokers, group)
	}
	t.Logf("%+v", *s)
	switch {
	case s.Events != 8000:
		t.Errorf("events %d", s.Events)
	case s.Predictions+s.DeadLettered != s.Events:
		t.Errorf("predictions %d + dead letters %d != events %d", s.Predictions, s.DeadLettered, s.Events)
	case s.DeadLettered != s.BadInjected || s.BadInjected == 0:
		t.Errorf("dead-lettered %d, injected %d", s.DeadLettered, s.BadInjected)
	case s.Alerts == 0:
		t.Errorf("no alerts")
	case s.Duplicates != 0:
		t.Errorf("%d duplicates without any failure", s.Duplicates)
	case s.Uncommitted != 0:
		t.Errorf("%d input records not committed after a graceful stop", s.Uncommitted)
	}
}

// TestDemoFailureWaitsForItsGoroutines: a demo that gives up (no output within its
// timeout) returns only once the job, the reader and the producer have stopped; goleak in
// TestMain fails the package if one outlives it.
func TestDemoFailureWaitsForItsGoroutines(t *testing.T) {
	c, err := config.Load("../../streamscore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Log.Level = "error"
	c.Metrics.Address = ""
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := Demo(ctx, c, DemoOptions{Events: 1000, Seed: 3, Timeout: time.Nanosecond}, io.Discard); err == nil {
		t.Fatal("a demo with a 1ns output timeout succeeded")
	}
}
