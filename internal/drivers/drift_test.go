//go:build integration

package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/topics"
)

// scaledAmounts is a producer that multiplies tx_amount of the events on topic by factor:
// a later segment of the stream whose amounts inflated.
type scaledAmounts struct {
	sim.RawProducer
	topic  string
	factor float64
	err    error
}

func (s *scaledAmounts) ProduceRaw(topic string, key, value []byte, headers map[string]string, ack func(error)) {
	if topic == s.topic {
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(value, &ev); err != nil {
			s.err = err
		} else if a, err := strconv.ParseFloat(string(ev["tx_amount"]), 64); err != nil {
			s.err = err
		} else {
			ev["tx_amount"] = strconv.AppendFloat(nil, a*s.factor, 'f', 2, 64)
			value, s.err = json.Marshal(ev)
		}
	}
	s.RawProducer.ProduceRaw(topic, key, value, headers, ack)
}

// produceDays writes the stream's transactions up to the start of day `until` (0-based),
// amounts multiplied by factor.
func produceDays(t *testing.T, c *config.Config, st *sim.Stream, until int, factor float64) sim.ProduceResult {
	t.Helper()
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sp := &scaledAmounts{RawProducer: p, topic: c.Topics.Input[0], factor: factor}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := sim.Produce(ctx, sp, sim.ProduceOptions{Days: until, Stream: st, HoldLabels: true, Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
	if err == nil {
		err = sp.err
	}
	if err != nil {
		t.Fatalf("producing days up to %d: %v", until, err)
	}
	return res
}

// TestIntegrationDrift: on the simulator's data, scored live on Apache Kafka with daily
// drift windows, TX_AMOUNT's PSI stays low; two days whose amounts are ×10 push the PSI
// of TX_AMOUNT and of the score over 0.25 while the customer transaction counts (which do
// not depend on amounts) stay below 0.1; a backfill of the same log writes the same drift
// records.
func TestIntegrationDrift(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	c.Drift.Window = 24 * time.Hour
	// Two days of ×10 amounts make most rows alert, and reason codes cost milliseconds per
	// alerting row (docs/reasons.md): they are not what this test is about.
	c.Explain.Enabled = false
	createInputTopics(t, c, 3)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	job := startLive(t, c, log)
	st := sim.NewStream(7, 0)
	var total int64
	total += produceDays(t, c, st, 3, 1).Events  // days 0-2: as simulated
	total += produceDays(t, c, st, 5, 10).Events // days 3-4: amounts ×10
	total += produceDays(t, c, st, 6, 1).Events  // day 5 closes day 4's windows
	awaitScored(t, c, total)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	live := driftRecords(t, c, c.Topics.Drift)

	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	if _, err := Backfill(ctx, cc, BackfillOptions{Out: "topic:" + c.Topics.Backfill, Registry: reg}, log, nil); err != nil {
		t.Fatal(err)
	}
	backfill := driftRecords(t, c, c.Topics.Backfill+".drift")

	checkDriftSeries(t, live)
	// the gauges show day 4, the newest window every partition closed: amounts ×10
	for name, g := range map[string]map[string]float64{"live": driftGauges(t, job.reg), "backfill": driftGauges(t, reg)} {
		end := time.Unix(int64(g["window_end"]), 0).UTC()
		if !end.Equal(time.Date(2018, 4, 6, 0, 0, 0, 0, time.UTC)) || g["TX_AMOUNT"] <= 0.25 || g["score"] <= 0.25 {
			t.Errorf("%s: the gauges show the window ending %v, TX_AMOUNT PSI %.3f, score PSI %.3f; want day 4's (ending 2018-04-06), both above 0.25",
				name, end, g["TX_AMOUNT"], g["score"])
		}
	}
	if fmt.Sprint(live) != fmt.Sprint(backfill) {
		t.Fatalf("the drift topic written live (%d keys) and by the backfill (%d keys) differ", len(live), len(backfill))
	}
	n := 0
	for _, v := range live {
		n += len(v)
	}
	report(t, "events %d: %d drift records over %d partitions, identical live and in the backfill", total, n, len(live))
}

// TestIntegrationDriftGauges is TestDriftGaugesOnTheReferenceWorkload on Apache Kafka:
// with the shipped config, live scoring catching up and a backfill show every PSI gauge.
func TestIntegrationDriftGauges(t *testing.T) {
	checkDriftGaugesOnTheReferenceWorkload(t, realBrokers(t))
}

// checkDriftSeries judges the windows: day 0 warms the count windows up and day 5 is
// open, so days 1-2 are the normal ones and days 3-4 the inflated ones.
func checkDriftSeries(t *testing.T, byKey map[string][][]byte) {
	t.Helper()
	day0 := time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
	const counts = "CUSTOMER_ID_NB_TX_1DAY_WINDOW"
	seen := 0
	for key, vals := range byKey {
		for _, v := range vals {
			r, err := drift.ParseRecord(v)
			if err != nil {
				t.Fatal(err)
			}
			day := int(r.Start.Sub(day0) / (24 * time.Hour))
			amount, cnt := r.Feature("TX_AMOUNT"), r.Feature(counts)
			report(t, "%s day %d: n %d judged %v: TX_AMOUNT PSI %.3f (outside %.3f), score PSI %.3f, %s PSI %.3f",
				key, day, r.Count, r.Judged, amount.PSI, amount.OutOfRange, r.Score.PSI, counts, cnt.PSI)
			if !r.Judged || r.Partial || day < 1 {
				continue
			}
			seen++
			switch {
			case day <= 2 && amount.PSI >= 0.1:
				t.Errorf("%s day %d: TX_AMOUNT PSI %.3f on unchanged data, want < 0.1", key, day, amount.PSI)
			case day >= 3 && (amount.PSI <= 0.25 || r.Score.PSI <= 0.25):
				t.Errorf("%s day %d: amounts ×10 but PSI TX_AMOUNT %.3f, score %.3f, want both > 0.25", key, day, amount.PSI, r.Score.PSI)
			case day >= 3 && cnt.PSI >= 0.1:
				t.Errorf("%s day %d: %s did not change, yet its PSI is %.3f, want < 0.1", key, day, counts, cnt.PSI)
			}
		}
	}
	if seen != 3*4 {
		t.Fatalf("%d judged windows of days 1-4, want 4 in each of 3 partitions", seen)
	}
}
