package drivers

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// checkDriftGaugesOnTheReferenceWorkload is TestDriftGaugesOnTheReferenceWorkload on the
// given brokers.
func checkDriftGaugesOnTheReferenceWorkload(t *testing.T, brokers []string) {
	c := testConfig(t, brokers)
	createInputTopics(t, c, 3)
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := sim.Produce(ctx, p, sim.ProduceOptions{Events: 11_000, Seed: 7, HoldLabels: true, Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	job := startLive(t, c, log) // produced first: it catches up from earliest
	awaitScored(t, c, res.Events)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := Backfill(ctx, cc, BackfillOptions{Out: "topic:" + c.Topics.Backfill, Registry: reg}, log, nil); err != nil {
		t.Fatal(err)
	}

	want := []string{"window_end", "score"}
	for _, h := range cc.DriftReference.Features {
		want = append(want, h.Name)
	}
	live, replayed := driftGauges(t, job.reg), driftGauges(t, reg)
	for _, g := range []struct {
		name   string
		gauges map[string]float64
	}{{"live", live}, {"backfill", replayed}} {
		for _, k := range want {
			if _, ok := g.gauges[k]; !ok {
				t.Errorf("%s: no PSI gauge for %s (drift.window %v, drift.min_count %d)", g.name, k, c.Drift.Window, c.Drift.MinCount)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if end := time.Unix(int64(live["window_end"]), 0).UTC(); !end.Equal(time.Date(2018, 4, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the gauges describe the window ending %v, want the stream's first week, ending on Monday 2018-04-02", end)
	}
	if fmt.Sprint(live) != fmt.Sprint(replayed) {
		t.Errorf("gauges live %v\nand in the backfill %v: want the same", live, replayed)
	}
	liveRecs, backfillRecs := driftRecords(t, c, c.Topics.Drift), driftRecords(t, c, c.Topics.Backfill+".drift")
	if len(liveRecs) != 3 || fmt.Sprint(liveRecs) != fmt.Sprint(backfillRecs) {
		t.Errorf("drift records of %d partitions live, %d in the backfill: want the same, of 3", len(liveRecs), len(backfillRecs))
	}
	for key, vals := range liveRecs {
		for _, v := range vals {
			r, err := drift.ParseRecord(v)
			if err != nil {
				t.Fatal(err)
			}
			report(t, "%s %s: %d rows, judged %v, TX_AMOUNT PSI %.3f, score PSI %.3f", key, r.Start.Format(time.DateOnly), r.Count, r.Judged, r.Feature("TX_AMOUNT").PSI, r.Score.PSI)
			if !r.Judged {
				t.Errorf("%s %v: %d rows, not judged", key, r.Start, r.Count)
			}
		}
	}
}

// driftGauges reads the drift gauges of a registry: feature PSIs by feature name, the
// score's PSI as "score" and the window's end as "window_end".
func driftGauges(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "streamscore_feature_psi":
				for _, l := range m.GetLabel() {
					if l.GetName() == "feature" {
						out[l.GetValue()] = m.GetGauge().GetValue()
					}
				}
			case "streamscore_score_psi":
				out["score"] = m.GetGauge().GetValue()
			case "streamscore_drift_window_end_timestamp_seconds":
				out["window_end"] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// driftRecords reads a drift topic to its end: each key's records in order.
func driftRecords(t *testing.T, c *config.Config, topic string) map[string][][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := map[string][][]byte{}
	err := topics.ReadToEnd(ctx, c.Kafka, []string{topic}, func(recs []record.Record) error {
		for _, r := range recs {
			out[string(r.Key)] = append(out[string(r.Key)], bytes.Clone(r.Value))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", topic, err)
	}
	return out
}
