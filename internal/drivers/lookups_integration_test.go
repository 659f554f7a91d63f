//go:build integration

package drivers

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// lookupConfig is testConfig with testdata/model/fraud-lookup.yaml's tables (on topics of
// the test's own), its 20 features and its model.
func lookupConfig(t *testing.T) *config.Config {
	t.Helper()
	c := testConfig(t, realBrokers(t))
	lk, err := config.Load("../../testdata/model/fraud-lookup.yaml")
	if err != nil {
		t.Fatal(err)
	}
	id := testenv.Name(t, "t")
	c.Tables, c.Features = lk.Tables, lk.Features
	for i := range c.Tables {
		c.Tables[i].Topic = c.Tables[i].Name + "-" + id
		c.Tables[i].DeadLetter = c.Tables[i].Name + "-dlq-" + id
		c.Tables[i].IdleTimeout = 200 * time.Millisecond
	}
	if c.Model.Path, err = filepath.Abs(lk.Resolve(lk.Model.Path)); err != nil {
		t.Fatal(err)
	}
	c.Drift.Enabled = false // the drift reference is the 15-feature model's
	c.IncludeFeatures = true
	createInputTopics(t, c, 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	var specs []topics.TopicSpec
	for _, tc := range c.Tables {
		specs = append(specs, topics.TopicSpec{Name: tc.Topic, Partitions: 2}, topics.TopicSpec{Name: tc.DeadLetter, Partitions: 1})
	}
	if err := adm.EnsureTopics(ctx, -1, specs...); err != nil {
		t.Fatal(err)
	}
	return c
}

// produceWithTables continues st with n events, their labels and the table rows true for
// them.
func produceWithTables(t *testing.T, c *config.Config, st *sim.Stream, n int, hold bool) sim.ProduceResult {
	t.Helper()
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := sim.Produce(ctx, p, sim.ProduceOptions{Events: n, Stream: st, HoldLabels: hold, Topic: c.Topics.Input[0], Labels: c.Topics.Labels,
		Merchants: c.Tables[0].Topic, Customers: c.Tables[1].Topic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestIntegrationLookupsLiveEqualsBackfillAndExport: with testdata/model/fraud-lookup's
// five lookup features on the simulator's merchants and customers tables, 10,000 events
// scored live across a rebalance (a second instance joins, the first leaves) and a
// restart (events written while none runs) have the same features live, in a backfill and
// in an export, and the same scores live and in the backfill, bit for bit; a malformed
// table row is dead-lettered live with its class.
func TestIntegrationLookupsLiveEqualsBackfillAndExport(t *testing.T) {
	c := lookupConfig(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	st := sim.NewStream(3, 0.002)
	var total, bad int64
	start := time.Now()
	add := func(r sim.ProduceResult) {
		total += r.Events
		bad += r.Bad
		t.Logf("%v: %d events produced (%d table rows)", time.Since(start).Round(time.Millisecond), total, r.TableRows)
	}

	first := startLive(t, c, log)
	produceBad(t, c)
	add(produceWithTables(t, c, st, 3_000, true))
	second := startLive(t, c, log) // a rebalance: partitions move to it
	waitMembers(t, c, 2)
	add(produceWithTables(t, c, st, 2_000, true))
	if err := first.stop(); err != nil { // a rebalance: the second takes every partition
		t.Fatal(err)
	}
	add(produceWithTables(t, c, st, 2_000, true))
	awaitScored(t, c, total)
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	add(produceWithTables(t, c, st, 1_500, true)) // written while none runs
	third := startLive(t, c, log)
	add(produceWithTables(t, c, st, 1_500, false))
	awaitScored(t, c, total)
	if err := third.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v: live done", time.Since(start).Round(time.Millisecond))
	live := finalOutputs(t, c)
	ls := live.Counts()
	var rejected float64
	for _, j := range []*liveJob{first, second, third} {
		rejected += counterValue(t, j.reg, "streamscore_table_rejected_total")
	}
	if rejected < 1 {
		t.Fatalf("the malformed merchants row was not counted as rejected (%v)", rejected)
	}
	checkTableDeadLetter(t, c)

	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "backfill.jsonl")
	bs, err := Backfill(ctx, cc, BackfillOptions{Out: "file:" + out, BatchSize: 4096}, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if bs.Events != total || bs.DeadLettered != ls.DeadLettered || bs.DeadLettered != bad {
		t.Fatalf("backfill read %d events with %d dead letters; live %d events, %d dead letters; %d malformed", bs.Events, bs.DeadLettered, total, ls.DeadLettered, bad)
	}
	t.Logf("%v: backfill done", time.Since(start).Round(time.Millisecond))
	rep, err := audit.Verify(ctx, c.Kafka, "topic:"+c.Topics.Predictions, "file:"+out, audit.Options{Show: 5, Threshold: c.Threshold})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Joined != ls.Predictions || rep.Joined+ls.DeadLettered != total {
		t.Fatalf("live and backfill disagree: %+v", *rep)
	}
	csvPath := filepath.Join(t.TempDir(), "export.csv")
	es, err := Export(ctx, cc, ExportOptions{Out: "file:" + csvPath}, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rows := readExport(t, csvPath, cc.Features.Len())
	liveFeatures, err := audit.ReadPredictions(ctx, c.Kafka, "topic:"+c.Topics.Predictions)
	if err != nil {
		t.Fatal(err)
	}
	var mismatch, missing, tiered int
	for _, row := range rows {
		f, ok := liveFeatures.Features[audit.Key{Topic: c.Topics.Input[0], Partition: row.partition, Offset: row.offset}]
		switch {
		case !ok:
			missing++
		case !audit.SameBits(f, row.features):
			if mismatch++; mismatch <= 3 {
				t.Errorf("%d@%d: live %v export %v", row.partition, row.offset, f, row.features)
			}
		}
		if row.features[15] > 0 { // MERCHANT_RISK_TIER: the lookups found rows
			tiered++
		}
	}
	report(t, "lookups: live vs backfill vs export of %d events (2 rebalances, 1 restart): joined %d, score mismatches %d, feature mismatches live/backfill %d, export rows %d, live/export mismatches %d, rows with a risk tier %d",
		total, rep.Joined, rep.Mismatches, rep.FeatureMismatches, es.Rows, mismatch, tiered)
	if int64(len(rows)) != rep.Joined || missing > 0 || mismatch > 0 || tiered == 0 {
		t.Fatalf("export disagrees with live: %d rows for %d predictions, %d missing live, %d mismatches, %d with a risk tier", len(rows), rep.Joined, missing, mismatch, tiered)
	}
}

// produceBad writes a merchants row that fails validation (a negative terminal id).
func produceBad(t *testing.T, c *config.Config) {
	t.Helper()
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	done := make(chan error, 1)
	p.ProduceRaw(c.Tables[0].Topic, []byte("-1"), []byte(`{"terminal_id":-1,"valid_from":"2018-03-01T00:00:00Z","risk_tier":1}`), nil, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// checkTableDeadLetter reads the merchants dead-letter topic: the bad row, with its class.
func checkTableDeadLetter(t *testing.T, c *config.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var classes []string
	err := topics.ReadToEnd(ctx, c.Kafka, []string{c.Tables[0].DeadLetter}, func(recs []record.Record) error {
		for _, r := range recs {
			for _, h := range r.Headers {
				if h.Key == record.HeaderErrorClass {
					classes = append(classes, string(h.Value))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(classes) == 0 || classes[0] != "out_of_range" {
		t.Fatalf("merchants dead letters have classes %v, want out_of_range", classes)
	}
	t.Logf("merchants dead letters: %v", classes)
}
