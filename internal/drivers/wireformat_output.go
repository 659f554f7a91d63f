package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// avroOutputs writes predictions and alerts in Avro (output.format avro): a Sink wrapper
// that re-encodes the operator's prediction records for those topics in the wire format
// of the prediction schema (pipeline.PredictionAvroSchema), registered under
// <topic>-value. Dead letters and every other output pass through unchanged.
type avroOutputs struct {
	sch avro.Schema
	ids map[string]int // by topic
}

// newAvroOutputs registers the prediction schema for the predictions and alerts topics;
// nil when output.format is json. The registry's compatibility rule refuses, at start, a
// prediction schema that cannot read the records of the version before.
func newAvroOutputs(ctx context.Context, c *config.Compiled, predictions, alerts string) (*avroOutputs, error) {
	if c.OutputFormat() != pipeline.FormatAvro {
		return nil, nil
	}
	text := pipeline.PredictionAvroSchema()
	sch, err := avro.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("the prediction Avro schema: %w", err)
	}
	reg, err := topics.NewSchemaRegistry(c.SchemaRegistryOptions())
	if err != nil {
		return nil, err
	}
	if err := reg.Ping(ctx); err != nil {
		return nil, err
	}
	a := &avroOutputs{sch: sch, ids: map[string]int{}}
	for _, topic := range []string{predictions, alerts} {
		if topic == "" {
			continue
		}
		if a.ids[topic], err = reg.Register(ctx, topic+"-value", "AVRO", text); err != nil {
			return nil, fmt.Errorf("output.format avro: %w", err)
		}
	}
	return a, nil
}

// wrap returns s writing Avro (s itself when a is nil).
func (a *avroOutputs) wrap(s pipeline.Sink) pipeline.Sink {
	if a == nil {
		return s
	}
	return &avroSink{Sink: s, a: a}
}

type avroSink struct {
	pipeline.Sink
	a *avroOutputs
}

// Produce implements pipeline.Sink.
func (s *avroSink) Produce(out *pipeline.Output, ack func(error)) {
	id, ok := s.a.ids[out.Topic]
	if !ok {
		s.Sink.Produce(out, ack)
		return
	}
	var p pipeline.Prediction
	if err := json.Unmarshal(out.Value, &p); err != nil {
		ack(fmt.Errorf("re-encoding a prediction for %s in Avro: %w", out.Topic, err))
		return
	}
	b, err := topics.AppendWireFormat(make([]byte, 0, 160), id, nil)
	if err == nil {
		var enc []byte
		enc, err = avro.Marshal(s.a.sch, pipeline.PredictionAvroValue(&p))
		b = append(b, enc...)
	}
	if err != nil {
		ack(fmt.Errorf("encoding a prediction for %s in Avro: %w", out.Topic, err))
		return
	}
	o := *out
	o.Value = b
	s.Sink.Produce(&o, ack)
}

// PredictionJSON returns what `tail` and `verify` use to read predictions written with
// output.format avro: a value in the wire format becomes the prediction's JSON (its writer
// schema fetched from schema_registry once per id); any other value is returned as it is.
// Nil when no schema_registry.url is configured. It is safe for concurrent use.
func PredictionJSON(c *config.Config) (func(ctx context.Context, value []byte) ([]byte, error), error) {
	if c.SchemaRegistry.URL == "" {
		return nil, nil
	}
	reg, err := topics.NewSchemaRegistry(c.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	schemas := map[int]avro.Schema{}
	return func(ctx context.Context, value []byte) ([]byte, error) {
		if len(value) == 0 || value[0] != 0 {
			return value, nil // JSON: never starts with a zero byte
		}
		id, payload, err := topics.SplitWireFormat(value)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		sch, ok := schemas[id]
		mu.Unlock()
		if !ok {
			s, err := reg.SchemaByID(ctx, id)
			if err != nil {
				return nil, err
			}
			if sch, err = avro.Parse(s.Text); err != nil {
				return nil, fmt.Errorf("schema id %d: %w", id, err)
			}
			mu.Lock()
			schemas[id] = sch
			mu.Unlock()
		}
		var v map[string]any
		if err := avro.Unmarshal(sch, payload, &v); err != nil {
			return nil, fmt.Errorf("a prediction with schema id %d: %w", id, err)
		}
		return predictionJSON(sch, v)
	}, nil
}

// predictionJSON is the generic value v of an Avro prediction as the JSON the operator
// writes: members in pipeline.Prediction's order, empty optional ones left out.
func predictionJSON(sch avro.Schema, v map[string]any) ([]byte, error) {
	v = unwrapUnions(sch, v).(map[string]any)
	if id, ok := v["id"].(string); ok {
		v["id"] = json.RawMessage(id) // the event id's JSON text (pipeline.PredictionAvroSchema)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var p pipeline.Prediction
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("an Avro prediction does not read as one: %w", err)
	}
	return json.Marshal(&p)
}

// unwrapUnions turns the generic value hamba/avro decodes for schema s into the
// prediction's JSON shape: a union's non-null branch comes back as {"branch name": value},
// which the JSON form writes as the value itself.
func unwrapUnions(s avro.Schema, v any) any {
	switch s := s.(type) {
	case *avro.UnionSchema:
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v
		}
		for name, inner := range m {
			for _, branch := range s.Types() {
				if branchName(branch) == name {
					return unwrapUnions(branch, inner)
				}
			}
		}
		return v
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for _, f := range s.Fields() {
			if x, ok := m[f.Name()]; ok {
				m[f.Name()] = unwrapUnions(f.Type(), x)
			}
		}
		return m
	case *avro.ArraySchema:
		if xs, ok := v.([]any); ok {
			for i := range xs {
				xs[i] = unwrapUnions(s.Items(), xs[i])
			}
		}
		return v
	case *avro.MapSchema:
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				m[k] = unwrapUnions(s.Values(), x)
			}
		}
		return v
	}
	return v
}

// branchName is the key hamba/avro gives a union branch of type s: a named type's full
// name, else the type's name ("array", "string", ...).
func branchName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}
