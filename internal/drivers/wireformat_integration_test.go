//go:build integration

package drivers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// registryURL is the Schema Registry of scripts/registry.sh (make test starts it).
func registryURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("STREAMSCORE_TEST_SCHEMA_REGISTRY")
	if u == "" {
		t.Skip("STREAMSCORE_TEST_SCHEMA_REGISTRY is not set: scripts/registry.sh start && eval \"$(scripts/registry.sh env)\"")
	}
	return u
}

// scoreLine is the part of a prediction the comparison reads.
type scoreLine struct {
	Source struct {
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
	} `json:"source"`
	Score json.RawMessage `json:"score"`
}

func readScores(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l scoreLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[strconv.Itoa(int(l.Source.Partition))+"@"+strconv.FormatInt(l.Source.Offset, 10)] = string(l.Score)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// produceFormat writes n simulated events (seed 7) to c's input topic, encoded by enc
// (nil: JSON).
func produceFormat(t testing.TB, c *config.Config, n int, enc sim.Encoder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := sim.Produce(ctx, p, sim.ProduceOptions{Events: n, Seed: 7, Topic: c.Topics.Input[0], Labels: c.Topics.Labels, Encode: enc}, nil); err != nil {
		t.Fatal(err)
	}
}

// avroVersionsEncoder registers the three versions of the simulator's Avro schema under
// the input topic's subject (the registry's BACKWARD rule accepts each) and writes the
// first third of the events with v1, the second with v2, the rest with v3.
func avroVersionsEncoder(t testing.TB, rc topics.SchemaRegistryConfig, topic string, n int) sim.Encoder {
	t.Helper()
	reg, err := topics.NewSchemaRegistry(rc)
	if err != nil {
		t.Fatal(err)
	}
	var ids [3]int
	var encs [3]sim.Encoder
	for v := range 3 {
		if ids[v], err = reg.Register(context.Background(), topic+"-value", "AVRO", sim.AvroSchemas[v]); err != nil {
			t.Fatal(err)
		}
		if encs[v], err = sim.AvroEncoder(v); err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("the registry gave the versions ids %v, want three", ids)
	}
	written := 0
	return func(dst []byte, tx *sim.Tx) ([]byte, error) {
		v := min(written*3/n, 2)
		written++
		dst, err := topics.AppendWireFormat(dst, ids[v], nil)
		if err != nil {
			return nil, err
		}
		return encs[v](dst, tx)
	}
}

// backfillScores backfills c into a file and returns its scores by partition@offset.
func backfillScores(t testing.TB, c *config.Config) map[string]string {
	t.Helper()
	scores, _ := backfillSummary(t, c)
	return scores
}

// backfillSummary backfills c into a file and returns its scores and its summary.
func backfillSummary(t testing.TB, c *config.Config) (map[string]string, *BackfillSummary) {
	t.Helper()
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "scores.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Backfill(ctx, cc, BackfillOptions{Out: "file:" + out, BatchSize: 256}, zap.NewNop(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.DeadLettered != 0 {
		t.Fatalf("%d events dead-lettered, want 0", s.DeadLettered)
	}
	return readScores(t, out), s
}

// TestIntegrationAvroScoresBitIdenticalToJSON: the same events in Avro over three writer
// schema versions (a field added with a default, an optional field added, an unused
// field removed) and in JSON give bit-identical scores; Protobuf and JSON Schema on a
// smaller stream likewise.
func TestIntegrationAvroScoresBitIdenticalToJSON(t *testing.T) {
	rc := topics.SchemaRegistryConfig{URL: registryURL(t)}
	n := 50000
	if s := os.Getenv("STREAMSCORE_AVRO_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	brokers := testenv.Brokers(t)
	cj := testConfig(t, brokers)
	createInputTopics(t, cj, 3)
	produceFormat(t, cj, n, nil)
	want := backfillScores(t, cj)
	if len(want) != n {
		t.Fatalf("JSON: %d scores, want %d", len(want), n)
	}
	check := func(t *testing.T, format string, events int, enc func(c *config.Config) sim.Encoder) {
		c := testConfig(t, brokers)
		c.Schema.Format, c.SchemaRegistry = format, rc
		createInputTopics(t, c, 3)
		produceFormat(t, c, events, enc(c))
		got := backfillScores(t, c)
		if len(got) != events {
			t.Fatalf("%s: %d scores, want %d", format, len(got), events)
		}
		diff := 0
		for k, v := range got {
			if want[k] != v {
				if diff < 5 {
					t.Errorf("%s: event %s scored %s, as JSON %s", format, k, v, want[k])
				}
				diff++
			}
		}
		if diff > 0 {
			t.Fatalf("%s: %d of %d scores differ from JSON's", format, diff, events)
		}
	}
	t.Run("avro", func(t *testing.T) {
		check(t, pipeline.FormatAvro, n, func(c *config.Config) sim.Encoder {
			return avroVersionsEncoder(t, rc, c.Topics.Input[0], n)
		})
	})
	small := min(n, 5000)
	for _, format := range []string{pipeline.FormatProtobuf, pipeline.FormatJSONSchema} {
		t.Run(format, func(t *testing.T) {
			check(t, format, small, func(c *config.Config) sim.Encoder {
				enc, err := SimulatedEncoder(context.Background(), rc, c.Topics.Input[0], format)
				if err != nil {
					t.Fatal(err)
				}
				return enc
			})
		})
	}
}

// TestIntegrationAvroPredictions: with output.format avro, predictions and alerts are in
// the wire format of the schema registered under <topic>-value, and the test decodes
// every prediction through the registry.
func TestIntegrationAvroPredictions(t *testing.T) {
	rc := topics.SchemaRegistryConfig{URL: registryURL(t)}
	c := testConfig(t, testenv.Brokers(t))
	c.Schema.Format, c.Output.Format, c.SchemaRegistry = pipeline.FormatAvro, pipeline.FormatAvro, rc
	createInputTopics(t, c, 3)
	const n = 2000
	produceFormat(t, c, n, avroVersionsEncoder(t, rc, c.Topics.Input[0], n))
	job := startLive(t, c, nil)
	reg, err := topics.NewSchemaRegistry(rc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := topics.NewReader(c.Kafka, topics.FromStart, c.Topics.Predictions, c.Topics.Alerts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	schemas := map[int]avro.Schema{}
	seen := map[string]bool{}
	alerts := 0
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for len(seen) < n {
		recs, err := r.Fetch(ctx)
		if err != nil {
			t.Fatalf("after %d predictions: %v", len(seen), err)
		}
		for _, rec := range recs {
			id, payload, err := topics.SplitWireFormat(rec.Value)
			if err != nil {
				t.Fatalf("%s: not in the wire format: %v", rec.Topic, err)
			}
			sch, ok := schemas[id]
			if !ok {
				s, err := reg.SchemaByID(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if sch, err = avro.Parse(s.Text); err != nil {
					t.Fatal(err)
				}
				schemas[id] = sch
			}
			var p map[string]any
			if err := avro.Unmarshal(sch, payload, &p); err != nil {
				t.Fatalf("%s: %v", rec.Topic, err)
			}
			src := p["source"].(map[string]any)
			if _, ok := p["score"].(float32); !ok || src["topic"] != c.Topics.Input[0] {
				t.Fatalf("decoded prediction %v", p)
			}
			if rec.Topic == c.Topics.Alerts {
				alerts++
				continue
			}
			seen[fmt.Sprint(src["partition"], "@", src["offset"])] = true
		}
	}
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	latest, found, err := reg.Latest(ctx, c.Topics.Predictions+"-value")
	if err != nil || !found || latest.Text == "" {
		t.Fatalf("no prediction schema under %s-value: %v", c.Topics.Predictions, err)
	}
	t.Logf("%d predictions and %d alerts decoded through the registry", len(seen), alerts)

	// verify and tail read them: the live Avro predictions against a backfill's JSON.
	decode, err := PredictionJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backfill.jsonl")
	if _, err := Backfill(ctx, cc, BackfillOptions{Out: "file:" + out}, zap.NewNop(), io.Discard); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, c.Kafka, "topic:"+c.Topics.Predictions, "file:"+out, audit.Options{Show: 3, Threshold: c.Threshold, Decode: decode})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Joined != n {
		t.Fatalf("verify of the Avro predictions against a backfill: %+v", rep)
	}
	var tail bytes.Buffer
	if err := PrintTopic(ctx, c, c.Topics.Predictions, PrintTopicOptions{FromStart: true, Limit: 1}, &tail); err != nil {
		t.Fatal(err)
	}
	if line := tail.String(); !strings.Contains(line, `value="{`) || !strings.Contains(line, `\"score\":`) {
		t.Fatalf("tail printed %q, want the prediction's JSON", line)
	}
}

// BenchmarkCatchUpAvroVsJSON is the catch-up rate (a backfill of the whole topic into a
// file, events/s) of the same simulated events in JSON and in Avro (three writer
// versions), in the same run. STREAMSCORE_AVRO_EVENTS sets the events (default 50,000).
func BenchmarkCatchUpAvroVsJSON(b *testing.B) {
	rc := topics.SchemaRegistryConfig{URL: registryURL(b)}
	n := 50000
	if s := os.Getenv("STREAMSCORE_AVRO_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	brokers := testenv.Brokers(b)
	for _, format := range []string{pipeline.FormatJSON, pipeline.FormatAvro} {
		c := testConfig(b, brokers)
		createInputTopics(b, c, 3)
		var enc sim.Encoder
		if format == pipeline.FormatAvro {
			c.Schema.Format, c.SchemaRegistry = format, rc
			enc = avroVersionsEncoder(b, rc, c.Topics.Input[0], n)
		}
		produceFormat(b, c, n, enc)
		b.Run(format, func(b *testing.B) {
			for range b.N {
				_, s := backfillSummary(b, c)
				b.ReportMetric(s.EventsPerSecond, "events/s")
			}
		})
	}
}
