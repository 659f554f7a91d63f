//go:build integration

package drivers

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// TestIntegrationAlertReasons scores a simulated stream live on Apache Kafka with the
// shipped forest (covers.json beside it): every alert read back from the alerts topic
// carries reasons whose contributions, with the base value and the other features',
// add up to its score (local accuracy, 1e-5); then a backfill of the same log writes
// the same reasons bit for bit, which the skew audit (audit.Verify) checks field by
// field on every alerting row.
func TestIntegrationAlertReasons(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	c.Threshold = 0.05 // more alerting rows than the reference threshold (0.5), for the check
	createInputTopics(t, c, 3)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	st := sim.NewStream(7, 0.01)
	job := startLive(t, c, log)
	res := produceStream(t, c, st, 4_000, 0, false)
	awaitScored(t, c, res.Events)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var alerts, checked int
	worst := 0.0
	err := topics.ReadToEnd(ctx, c.Kafka, []string{c.Topics.Alerts}, func(recs []record.Record) error {
		for _, r := range recs {
			alerts++
			var p pipeline.Prediction
			if err := json.Unmarshal(r.Value, &p); err != nil {
				t.Fatalf("alert %s: %v", r.Value, err)
			}
			if p.BaseValue == nil || len(p.Reasons) != c.Explain.TopK {
				t.Fatalf("alert without base_value or %d reasons: %s", c.Explain.TopK, r.Value)
			}
			sum := *p.BaseValue + p.OtherContribution
			for _, rs := range p.Reasons {
				sum += rs.Contribution
			}
			d := math.Abs(sum - float64(p.Score))
			worst = max(worst, d)
			if d > 1e-5 {
				t.Fatalf("alert %s: base + contributions = %v, score %v", r.Value, sum, p.Score)
			}
			checked++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if alerts < 10 {
		t.Fatalf("%d alerts of %d events: too few to judge", alerts, res.Events)
	}

	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backfill.jsonl")
	if _, err := Backfill(ctx, cc, BackfillOptions{Out: "file:" + out, BatchSize: 4096}, log, io.Discard); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, c.Kafka, "topic:"+c.Topics.Predictions, "file:"+out, audit.Options{Show: 5, Threshold: c.Threshold})
	if err != nil {
		t.Fatal(err)
	}
	live, err := audit.ReadPredictions(ctx, c.Kafka, "topic:"+c.Topics.Predictions)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "reasons: %d events, %d alerts, local accuracy within %.3g on all; backfill vs live: joined %d, %d rows with reasons, reason mismatches %d, score mismatches %d",
		res.Events, checked, worst, rep.Joined, len(live.Reasons), rep.ReasonMismatches, rep.Mismatches)
	if !rep.OK() || len(live.Reasons) != alerts {
		t.Fatalf("live and backfill disagree, or live predictions with reasons (%d) are not the alerts (%d): %+v", len(live.Reasons), alerts, *rep)
	}
}
