//go:build integration

package drivers

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// avroLiveConfig is an avro-format config with its input topics created and the three
// simulator schema versions registered under the input's subject.
func avroLiveConfig(t *testing.T) (*config.Config, *topics.SchemaRegistry, [3]int) {
	t.Helper()
	c := testConfig(t, testenv.Brokers(t))
	c.Schema.Format, c.SchemaRegistry = pipeline.FormatAvro, topics.SchemaRegistryConfig{URL: registryURL(t)}
	createInputTopics(t, c, 3)
	reg, err := topics.NewSchemaRegistry(c.SchemaRegistry)
	if err != nil {
		t.Fatal(err)
	}
	var ids [3]int
	for v := range 3 {
		if ids[v], err = reg.Register(t.Context(), c.Topics.Input[0]+"-value", "AVRO", sim.AvroSchemas[v]); err != nil {
			t.Fatal(err)
		}
	}
	return c, reg, ids
}

// encoderOf is the wire-format encoder of simulator schema version v, registered as id.
func encoderOf(t *testing.T, v, id int) sim.Encoder {
	t.Helper()
	enc, err := sim.AvroEncoder(v)
	if err != nil {
		t.Fatal(err)
	}
	return func(dst []byte, tx *sim.Tx) ([]byte, error) {
		dst, err := topics.AppendWireFormat(dst, id, nil)
		if err != nil {
			return nil, err
		}
		return enc(dst, tx)
	}
}

// produceRaw writes values (key "1") to topic and returns their partitions and offsets.
func produceRaw(t *testing.T, c *config.Config, values [][]byte) []audit.Key {
	t.Helper()
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	keys := make([]audit.Key, len(values))
	var wg sync.WaitGroup
	errs := make([]error, len(values))
	for i, v := range values {
		wg.Add(1)
		p.ProduceResult(c.Topics.Input[0], []byte("1"), v, func(part int32, off int64, _ time.Time, err error) {
			keys[i], errs[i] = audit.Key{Topic: c.Topics.Input[0], Partition: part, Offset: off}, err
			wg.Done()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestIntegrationWireFormatDeadLetterClasses: on Apache Kafka and Apicurio, one record
// of each Avro dead-letter class among valid events, then one invalid_protobuf record in
// a small Protobuf stream and one schema_violation record in a small JSON Schema stream:
// each dead-lettered with its class, every valid event scored.
func TestIntegrationWireFormatDeadLetterClasses(t *testing.T) {
	c, reg, ids := avroLiveConfig(t)
	lacking, err := reg.Register(t.Context(), c.Topics.Input[0]+"-lacking-value", "AVRO",
		`{"type":"record","name":"T","fields":[{"name":"transaction_id","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	const valid = 500
	produceFormat(t, c, valid, encoderOf(t, 0, ids[0]))
	bad := map[string][]byte{
		"bad_wire_format": []byte(`{"transaction_id":1,"customer_id":1}`),
		"unknown_schema":  {0, 0x7f, 0xff, 0xff, 0xf0, 2},
		"schema_mismatch": {0, byte(lacking >> 24), byte(lacking >> 16), byte(lacking >> 8), byte(lacking), 2},
		"invalid_avro":    {0, byte(ids[0] >> 24), byte(ids[0] >> 16), byte(ids[0] >> 8), byte(ids[0]), 2},
	}
	var classes []string
	var values [][]byte
	for class, v := range bad {
		classes, values = append(classes, class), append(values, v)
	}
	keys := produceRaw(t, c, values)
	job := startLive(t, c, nil)
	awaitScored(t, c, valid+int64(len(bad)))
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	out := finalOutputs(t, c)
	if n := out.Counts(); n.Predictions != valid || n.DeadLettered != int64(len(bad)) {
		t.Fatalf("%+v, want %d predictions and %d dead letters", n, valid, len(bad))
	}
	for i, k := range keys {
		if got := out.DeadLetterClass(k); got != classes[i] {
			t.Errorf("record %v: dead-letter class %q, want %q", k, got, classes[i])
		}
	}
	for _, tc := range []struct{ format, typ, text, class string }{
		{pipeline.FormatProtobuf, "PROTOBUF", sim.ProtoSchema, string(pipeline.ClassInvalidProtobuf)},
		{pipeline.FormatJSONSchema, "JSON", sim.JSONSchema, string(pipeline.ClassSchemaViolation)},
	} {
		t.Run(tc.format, func(t *testing.T) {
			waitBound(t) // mostly waits: the two streams side by side
			oneBadRecord(t, tc.format, tc.typ, tc.text, tc.class)
		})
	}
}

// oneBadRecord scores a small stream of the simulator's events in format (its schema
// typ/text registered under the input's subject) with one value of that schema id that
// does not decode, and checks that this one is dead-lettered with class.
func oneBadRecord(t *testing.T, format, typ, text, class string) {
	c := testConfig(t, testenv.Brokers(t))
	c.Schema.Format, c.SchemaRegistry = format, topics.SchemaRegistryConfig{URL: registryURL(t)}
	createInputTopics(t, c, 3)
	enc, err := SimulatedEncoder(t.Context(), c.SchemaRegistry, c.Topics.Input[0], format)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := topics.NewSchemaRegistry(c.SchemaRegistry)
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.Register(t.Context(), c.Topics.Input[0]+"-value", typ, text) // the id enc writes
	if err != nil {
		t.Fatal(err)
	}
	const valid = 200
	produceFormat(t, c, valid, enc)
	bad := []byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	if format == pipeline.FormatProtobuf {
		bad = append(bad, 0, 0x08) // message index [0], then field 1's tag without its value
	} else {
		bad = append(bad, `{"transaction_id":-1,"tx_datetime":"2026-01-01T00:00:00Z","customer_id":1,"terminal_id":1,"tx_amount":1}`...)
	}
	keys := produceRaw(t, c, [][]byte{bad})
	job := startLive(t, c, nil)
	awaitScored(t, c, valid+1)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	out := finalOutputs(t, c)
	if n := out.Counts(); n.Predictions != valid || n.DeadLettered != 1 {
		t.Fatalf("%+v, want %d predictions and 1 dead letter", n, valid)
	}
	if got := out.DeadLetterClass(keys[0]); got != class {
		t.Errorf("record %v: dead-letter class %q, want %q", keys[0], got, class)
	}
}

// registryScript runs scripts/registry.sh for the registry of STREAMSCORE_TEST_SCHEMA_REGISTRY
// and returns how long it took.
func registryScript(t *testing.T, cmd string) time.Duration {
	t.Helper()
	u, err := url.Parse(registryURL(t))
	if err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("../../scripts/registry.sh", cmd)
	sh.Env = append(os.Environ(), "REGISTRY_PORT="+u.Port())
	t0 := time.Now()
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("registry.sh %s: %v\n%s", cmd, err, out)
	}
	return time.Since(t0)
}

// TestIntegrationRegistryOutageIsNotABadRecord: the registry is stopped for 20 s and
// started again (registry.sh start-again: its schemas are kept in its H2 file database)
// while events of a writer schema the instance has not looked up yet arrive: they wait,
// and are all scored once it answers: 0 dead letters, 0 missing.
func TestIntegrationRegistryOutageIsNotABadRecord(t *testing.T) {
	// Mostly a wait: in parallel with the other waiting tests. No other test of this
	// package uses the registry once the sequential tests are done.
	waitBound(t)
	c, _, ids := avroLiveConfig(t)
	st := sim.NewStream(11, 0)
	produceWith := func(n int, enc sim.Encoder) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, err := sim.Produce(ctx, p, sim.ProduceOptions{Events: n, Stream: st, HoldLabels: true, Topic: c.Topics.Input[0], Labels: c.Topics.Labels, Encode: enc}, nil); err != nil {
			t.Fatal(err)
		}
	}
	const n = 1000
	produceWith(n, encoderOf(t, 0, ids[0]))
	job := startLive(t, c, nil)
	awaitScored(t, c, n)
	registryScript(t, "stop")
	restarted := false
	defer func() {
		if !restarted {
			registryScript(t, "start-again")
		}
	}()
	produceWith(n, encoderOf(t, 1, ids[1])) // a schema id the instance has not seen
	time.Sleep(20 * time.Second)            // the outage itself, not a barrier
	if got := counterValue(t, job.reg, "streamscore_dead_letters_total"); got != 0 {
		t.Errorf("%v dead letters during the outage", got)
	}
	if got := counterValue(t, job.reg, "streamscore_schema_registry_retries_total"); got == 0 {
		t.Error("no registry lookup was retried during the outage: the test did not test it")
	}
	took := registryScript(t, "start-again")
	restarted = true
	t.Logf("the registry started again in %v", took.Round(100*time.Millisecond))
	awaitScored(t, c, 2*n)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	if got := finalOutputs(t, c).Counts(); got.Predictions != 2*n || got.DeadLettered != 0 {
		t.Fatalf("%+v, want %d predictions and no dead letter", got, 2*n)
	}
}

// TestIntegrationWireFormatFailsAtStart: a registry URL that does not answer, and a
// latest input schema that cannot feed schema.fields, stop the run at start with what to
// fix.
func TestIntegrationWireFormatFailsAtStart(t *testing.T) {
	c, reg, _ := avroLiveConfig(t)
	start := func(c *config.Config) error {
		cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Backfill(t.Context(), cc, BackfillOptions{Out: "file:" + t.TempDir() + "/out.jsonl"}, nil, nil)
		return err
	}
	down := *c
	down.SchemaRegistry.URL = "http://127.0.0.1:1/apis/ccompat/v7"
	if err := start(&down); err == nil || !strings.Contains(err.Error(), "does not answer: check schema_registry.url") {
		t.Errorf("registry down at start: %v", err)
	}
	// a field added without a default cannot read the earlier versions' events
	incompatible := strings.Replace(sim.AvroSchemas[2], `{"name":"currency"`, `{"name":"merchant","type":"long"},{"name":"currency"`, 1)
	if _, err := reg.Register(t.Context(), c.Topics.Input[0]+"-value", "AVRO", incompatible); err == nil {
		t.Fatal("the registry accepted a BACKWARD-incompatible version: is its compatibility rule set?")
	}
	other := *c
	other.Topics.Input = []string{c.Topics.Input[0] + "-narrow"}
	if _, err := reg.Register(t.Context(), other.Topics.Input[0]+"-value", "AVRO",
		`{"type":"record","name":"T","fields":[{"name":"transaction_id","type":"long"}]}`); err != nil {
		t.Fatal(err)
	}
	if err := start(&other); err == nil || !strings.Contains(err.Error(), "cannot feed schema.fields") {
		t.Errorf("a schema that cannot feed the plan: %v", err)
	}
}
