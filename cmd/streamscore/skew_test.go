package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// TestIntegrationLiveEqualsBackfill is the skew audit: 210k events scored live on Apache
// Kafka while the offered load changes (so live batches take many sizes) and the live
// pipeline is restarted midway; then a backfill of the same topic through the same
// operator, and verify: every event joined, none missing, every score bit-identical.
func TestIntegrationLiveEqualsBackfill(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 6)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))

	first := startLive(t, c, log)
	var total int64
	total += produceAt(t, c, 20_000, 5_000, 0.002, 1).events // trickle: small batches
	total += produceAt(t, c, 80_000, 0, 0.002, 2).events     // flood: full batches
	awaitOutputs(t, c, total, 200*time.Millisecond)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	total += produceAt(t, c, 20_000, 0, 0.002, 3).events // written while no pipeline runs
	second := startLive(t, c, log)
	total += produceAt(t, c, 50_000, 20_000, 0.002, 4).events
	total += produceAt(t, c, 40_000, 0, 0.002, 5).events
	live := awaitOutputs(t, c, total, time.Second)
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	sizes := batchSizeBuckets(t, first.reg)
	for k, v := range batchSizeBuckets(t, second.reg) {
		sizes[k] += v
	}
	t.Logf("live: %d events; batch sizes by histogram bucket (upper bound: batches): %v", total, sizes)
	if len(sizes) < 4 {
		t.Fatalf("live batches fell in only %d size buckets: the load did not vary enough to test batch independence", len(sizes))
	}
	ls := &demoSummary{}
	live.fill(ls)

	cc, err := c.validate(true, true)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backfill.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bs, err := runBackfill(ctx, cc, backfillOptions{out: "file:" + out, batchSize: 4096}, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backfill: %+v", *bs)
	if bs.Events != total || bs.DeadLettered != ls.DeadLettered {
		t.Fatalf("backfill read %d events with %d dead letters; live had %d events, %d dead letters", bs.Events, bs.DeadLettered, total, ls.DeadLettered)
	}
	rep, err := verifyStreams(ctx, c.Kafka, "topic:"+c.Topics.Predictions, "file:"+out, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "live vs backfill of %d events: joined %d, missing in live %d, missing in backfill %d, mismatches %d, live duplicates %d",
		total, rep.Joined, rep.MissingInA, rep.MissingInB, rep.Mismatches, rep.DuplicatesA)
	if !rep.ok() || rep.Joined != ls.Predictions || rep.Joined+ls.DeadLettered != total {
		t.Fatalf("live and backfill disagree: %+v", *rep)
	}
}
