package drivers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/evaluate"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// checkExperimentReport is the acceptance check of an experiment run (issue 24): it runs
// ExperimentReport for name on c's topics and compares it with the test's own join of
// the same topics (evaluate.Check): the counts must be equal and the rates agree to 1e-9.
// Call it once every instance has stopped writing. It returns the report for further
// checks.
func checkExperimentReport(t *testing.T, c *config.Config, name string) *evaluate.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cc, err := c.Validate(config.Needs{Kafka: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ExperimentReport(ctx, cc, name, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	read := func(topic string) [][]byte {
		var vals [][]byte
		if err := topics.ReadToEnd(ctx, c.Kafka, []string{topic}, func(recs []record.Record) error {
			for i := range recs {
				vals = append(vals, recs[i].Value)
			}
			return nil
		}); err != nil {
			t.Fatalf("reading %s: %v", topic, err)
		}
		return vals
	}
	in := evaluate.CheckInput{Experiment: name, Predictions: read(c.Topics.Predictions), Labels: read(c.Topics.Labels),
		IDField: c.Feedback.IDField, LabelField: c.Feedback.LabelField, Threshold: c.Threshold}
	if err := evaluate.Check(rep, in); err != nil {
		t.Fatalf("the report of %s disagrees with the topics:\n%v", name, err)
	}
	return rep
}

// produceExperimentOutputs writes n predictions of experiment name in the contract's
// format (docs/topics-and-formats.md: "id", "experiment") to c's predictions topic, every
// tenth of them twice (a redelivery), a prediction of another experiment, and a label for
// about 60% of them to the labels topic. The treatment (a fifth of the cards) ranks frauds
// better.
func produceExperimentOutputs(t *testing.T, c *config.Config, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	err = adm.EnsureTopics(ctx, -1, topics.TopicSpec{Name: c.Topics.Predictions, Partitions: 3}, topics.TopicSpec{Name: c.Topics.Labels, Partitions: 3})
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	errs := make(chan error, 1)
	ack := func(err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	rng := rand.New(rand.NewPCG(24, uint64(n)))
	t0 := time.Date(2018, 8, 8, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		card := rng.IntN(300)
		arm, version, lift := "control", "c0ffee01", 0.0
		if card%5 == 0 {
			arm, version, lift = "treatment", "7ea7e502", 0.25
		}
		fraud := rng.Float64() < 0.08
		score := rng.Float64() * 0.6
		if fraud {
			score += 0.2 + lift
		}
		key := []byte(strconv.Itoa(card))
		v := fmt.Appendf(nil, `{"source":{"topic":"tx","partition":%d,"offset":%d},"key":"%d","id":%d,"score":%v,"model":{"name":"fraud","version":%q},"experiment":{"name":%q,"arm":%q},"event_time":%q,"scored_at":"2026-12-03T11:00:00Z"}`,
			card%3, i, card, 1000+i, float32(min(score, 1)), version, name, arm, t0.Add(time.Duration(i)*17*time.Second).Format(time.RFC3339))
		p.ProduceRaw(c.Topics.Predictions, key, v, nil, ack)
		if i%10 == 0 {
			p.ProduceRaw(c.Topics.Predictions, key, v, nil, ack)
		}
		if rng.Float64() < 0.6 {
			p.ProduceRaw(c.Topics.Labels, key, fmt.Appendf(nil, `{"transaction_id":%d,"tx_datetime":%q,"terminal_id":1,"tx_fraud":%d}`,
				1000+i, t0.Add(time.Duration(i)*17*time.Second).Format(time.RFC3339), map[bool]int{true: 1}[fraud]), nil, ack)
		}
	}
	p.ProduceRaw(c.Topics.Predictions, nil, []byte(`{"source":{"topic":"tx","partition":0,"offset":0},"id":1,"score":0.9,"model":{"name":"fraud","version":"x"},"experiment":{"name":"other","arm":"control"}}`), nil, ack)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
