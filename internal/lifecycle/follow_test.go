package lifecycle

import (
	"context"
	"testing"
	"time"

	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// TestFollowerCatchesUpThenRuns: NewFollower returns scoring with what the log made live,
// and Run, started afterwards, applies an activation written in between and one written
// while it runs; canceling its ctx ends it with nil.
func TestFollowerCatchesUpThenRuns(t *testing.T) {
	ctx, reg := registry(t)
	var versions []string
	for _, b := range []float32{0, 1, 2} {
		meta, err := Push(ctx, reg, logistic(b), PushOptions{Name: "fraud", Width: 3, By: "pusher"})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, meta.Version)
	}
	if _, err := Activate(ctx, reg, "fraud", versions[0], topics.RoleLive, "op"); err != nil {
		t.Fatal(err)
	}
	cpu := scorer.Options{Name: "fraud", Device: scorer.CPU, Threads: 1}
	fallback, err := scorer.OpenBytes(logistic(9), cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer fallback.Close()
	f, err := NewFollower(ctx, reg, LiveOptions{Name: "fraud", Width: 3, Model: cpu, Fallback: fallback}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer f.live.Close() // not f.Close: the registry is the test's, closed by its cleanup
	if live, shadow := f.Current(); live.Version() != versions[0] || shadow != nil {
		t.Fatalf("after NewFollower: live %s, shadow %v; want %s and none", live.Version(), shadow, versions[0])
	}

	if _, err := Activate(ctx, reg, "fraud", versions[1], topics.RoleShadow, "op"); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	if _, err := Activate(ctx, reg, "fraud", versions[2], topics.RoleLive, "op"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		live, shadow := f.Current()
		if live.Version() == versions[2] && shadow != nil && shadow.Version() == versions[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s of Run: live %s, shadow %v; want %s and %s", live.Version(), shadow, versions[2], versions[1])
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not a barrier
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
}
