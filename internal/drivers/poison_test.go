//go:build integration

package drivers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// TestIntegrationPoisonCorpus writes a corpus of malformed records between good events to
// Apache Kafka: every malformed record is dead-lettered with its reason, nothing crashes,
// and every good event around them is scored.
func TestIntegrationPoisonCorpus(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 1) // one partition: the good events sit right between the bad ones
	job := startLive(t, c, nil)

	good := []byte(`{"transaction_id":1,"tx_datetime":"2018-04-01T00:07:56Z","customer_id":596,"terminal_id":3156,"tx_amount":57.16}`)
	type poison struct {
		key, value []byte
		class      string
	}
	corpus := []poison{
		{[]byte("596"), []byte("{\"tx_amount\":\"\xff\xfe\"}"), "invalid_utf8"},
		{[]byte("596"), []byte(`{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), "too_deep"},
		{[]byte("596"), []byte(`{"tx_amount":"` + strings.Repeat("9", 1_000_000) + `"}`), "oversize"},
		{[]byte("596"), []byte(strings.Replace(string(good), "57.16", `"57.16"`, 1)), "wrong_type"},
		{[]byte("596"), []byte(strings.Replace(string(good), "57.16", "NaN", 1)), "invalid_json"},
		{[]byte("596"), []byte(strings.Replace(string(good), "57.16", "1e400", 1)), "non_finite"},
		{[]byte("596"), []byte(strings.Replace(string(good), "57.16", "-Infinity", 1)), "invalid_json"},
		{[]byte("596"), []byte(strings.Replace(string(good), `,"tx_amount":57.16`, "", 1)), "missing_field"},
		{[]byte("596"), []byte(strings.Replace(string(good), `"customer_id":596,`, `"customer_id":596,"customer_id":597,`, 1)), "duplicate_key"},
		{[]byte("596"), nil, "empty"},
		{[]byte("596"), []byte{}, "empty"},
		{nil, good, "missing_key"},
		{[]byte("596"), []byte(`"just a string"`), "not_object"},
		{[]byte("596"), []byte(strings.Replace(string(good), "57.16", "1e15", 1)), "out_of_range"},
		{[]byte("596"), sim.Corrupt("truncated_json", good), "invalid_json"},
	}
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	errs := make(chan error, 2*len(corpus)+1)
	for _, pc := range corpus {
		p.ProduceRaw(c.Topics.Input[0], []byte("596"), good, nil, func(err error) { errs <- err })
		p.ProduceRaw(c.Topics.Input[0], pc.key, pc.value, nil, func(err error) { errs <- err })
	}
	p.ProduceRaw(c.Topics.Input[0], []byte("596"), good, nil, func(err error) { errs <- err })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2*len(corpus)+1; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("producing the corpus: %v", err)
		}
	}
	total := int64(2*len(corpus) + 1)
	awaitScored(t, c, total)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	out := finalOutputs(t, c)
	s := out.Counts()
	if s.Predictions != int64(len(corpus)+1) || s.DeadLettered != int64(len(corpus)) || s.Duplicates != 0 {
		t.Fatalf("outputs %+v: want %d predictions and %d dead letters", s, len(corpus)+1, len(corpus))
	}
	// Each dead letter sits at an odd offset and names the expected class.
	for i, pc := range corpus {
		got := out.DeadLetterClass(audit.Key{Topic: c.Topics.Input[0], Partition: 0, Offset: int64(2*i + 1)})
		if got != pc.class {
			t.Errorf("poison %d (%.40q…): dead-lettered as %q, want %q", i, pc.value, got, pc.class)
		}
	}
}

// TestIntegrationDeadLetterTopicUnavailable: when a dead letter cannot be written, the
// pipeline stops consuming with an error rather than lose the record, and no offset at or
// past the bad record is committed.
func TestIntegrationDeadLetterTopicUnavailable(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	c.Topics.Create = false // the dead-letter topic will not exist (the broker does not auto-create)
	createInputTopics(t, c, 1)
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := adm.EnsureTopics(ctx, -1, topics.TopicSpec{Name: c.Topics.Predictions, Partitions: 1}, topics.TopicSpec{Name: c.Topics.Alerts, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	good := []byte(`{"transaction_id":1,"tx_datetime":"2018-04-01T00:07:56Z","customer_id":596,"terminal_id":3156,"tx_amount":57.16}`)
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range [][]byte{good, good, []byte("{broken"), good, good} {
		p.ProduceRaw(c.Topics.Input[0], []byte{byte('0' + i)}, v, nil, nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()

	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLive(ctx, cc, LiveDeps{Registry: prometheus.NewRegistry(), Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), Stats: &pipeline.Stats{}})
	if err != nil {
		t.Fatal(err)
	}
	err = l.Run(ctx) // must end by itself, with an error
	if err == nil || ctx.Err() != nil {
		t.Fatalf("run = %v (ctx %v): want it to stop on the failed dead letter", err, ctx.Err())
	}
	t.Logf("stopped as expected: %v", err)
	committed, err := adm.Committed(ctx, c.Group, c.Topics.Input[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	if committed > 2 {
		t.Fatalf("committed offset %d passes the record at offset 2 whose dead letter was never written", committed)
	}
}
