package pipeline

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// flakyFeedback fails CaughtUp fails times, then answers that every partition is caught up.
type flakyFeedback struct {
	memFeedback
	fails int
}

func (f *flakyFeedback) CaughtUp(ctx context.Context) (map[int32]bool, error) {
	if f.fails > 0 {
		f.fails--
		return nil, errors.New("unable to dial: connection refused")
	}
	return map[int32]bool{0: true}, nil
}

// TestFeedbackWaitBacksOffWhileTheBrokerFails: failed end-offset checks in a row back off
// further each time (the log line's attempt grows) instead of asking ten times a second
// through a failover, and a success starts the count again.
func TestFeedbackWaitBacksOffWhileTheBrokerFails(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	src := &flakyFeedback{fails: 3}
	ft := newFeedbackTable(&FeedbackConfig{}, nil, src, NewMetrics(nil), zap.New(core))
	for range 3 {
		if ok, err := ft.markIdle(context.Background(), 0, 0); ok || err != nil {
			t.Fatalf("markIdle with the broker failing = %v, %v; want false, nil (retry later)", ok, err)
		}
	}
	var attempts []int64
	for _, e := range logs.All() {
		attempts = append(attempts, e.ContextMap()["attempt"].(int64))
	}
	if len(attempts) != 3 || attempts[0] != 1 || attempts[1] != 2 || attempts[2] != 3 {
		t.Fatalf("logged attempts %v; want [1 2 3]: each failure in a row backs off further", attempts)
	}
	if ok, err := ft.markIdle(context.Background(), 0, 0); !ok || err != nil {
		t.Fatalf("markIdle once the broker answers = %v, %v; want true, nil", ok, err)
	}
	if ft.failed != 0 {
		t.Fatalf("failures in a row after a success = %d; want 0", ft.failed)
	}
	src.fails = 1
	if _, err := ft.markIdle(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := logs.All()[len(logs.All())-1].ContextMap()["attempt"].(int64); got != 1 {
		t.Fatalf("the first failure after a success logged attempt %d; want 1", got)
	}
}
