package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/cmd/streamscore/sim"
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
		{[]byte("1"), []byte("{\"tx_amount\":\"\xff\xfe\"}"), "invalid_utf8"},
		{[]byte("1"), []byte(`{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), "too_deep"},
		{[]byte("1"), []byte(`{"tx_amount":"` + strings.Repeat("9", 1_000_000) + `"}`), "oversize"},
		{[]byte("1"), []byte(strings.Replace(string(good), "57.16", `"57.16"`, 1)), "wrong_type"},
		{[]byte("1"), []byte(strings.Replace(string(good), "57.16", "NaN", 1)), "invalid_json"},
		{[]byte("1"), []byte(strings.Replace(string(good), "57.16", "1e400", 1)), "non_finite"},
		{[]byte("1"), []byte(strings.Replace(string(good), "57.16", "-Infinity", 1)), "invalid_json"},
		{[]byte("1"), []byte(strings.Replace(string(good), `,"tx_amount":57.16`, "", 1)), "missing_field"},
		{[]byte("1"), []byte(strings.Replace(string(good), `"customer_id":596,`, `"customer_id":596,"customer_id":597,`, 1)), "duplicate_key"},
		{[]byte("1"), nil, "empty"},
		{[]byte("1"), []byte{}, "empty"},
		{nil, good, "missing_key"},
		{[]byte("1"), []byte(`"just a string"`), "not_object"},
		{[]byte("1"), []byte(strings.Replace(string(good), "57.16", "1e15", 1)), "out_of_range"},
		{[]byte("1"), sim.Corrupt("truncated_json", good), "invalid_json"},
	}
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	errs := make(chan error, 2*len(corpus)+1)
	for _, pc := range corpus {
		p.ProduceRaw(c.Topics.Input[0], []byte("1"), good, nil, func(err error) { errs <- err })
		p.ProduceRaw(c.Topics.Input[0], pc.key, pc.value, nil, func(err error) { errs <- err })
	}
	p.ProduceRaw(c.Topics.Input[0], []byte("1"), good, nil, func(err error) { errs <- err })
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
	out := awaitOutputs(t, c, total, time.Second)
	s := &demoSummary{}
	out.fill(s)
	if s.Predictions != int64(len(corpus)+1) || s.DeadLettered != int64(len(corpus)) || s.Duplicates != 0 {
		t.Fatalf("outputs %+v: want %d predictions and %d dead letters", *s, len(corpus)+1, len(corpus))
	}
	// Each dead letter sits at an odd offset and names the expected class.
	for i, pc := range corpus {
		got := out.dlqClass[srcKey{c.Topics.Input[0], 0, int64(2*i + 1)}]
		if got != pc.class {
			t.Errorf("poison %d (%.40q…): dead-lettered as %q, want %q", i, pc.value, got, pc.class)
		}
	}
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
}
