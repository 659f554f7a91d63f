package drivers

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/wireformat"
	"github.com/streamscore/streamscore/topics"
)

// registryAdapter is wireformat's view of topics' Schema Registry client.
type registryAdapter struct{ r *topics.SchemaRegistry }

func (a registryAdapter) WriterSchema(ctx context.Context, id int) (string, string, error) {
	s, err := a.r.SchemaByID(ctx, id)
	if errors.Is(err, topics.ErrUnknownSchema) {
		return "", "", fmt.Errorf("%w: %w", wireformat.ErrUnknownSchema, err)
	}
	return s.Type, s.Text, err
}

func (registryAdapter) Split(b []byte) (int, []byte, error) { return topics.SplitWireFormat(b) }
func (registryAdapter) SplitIndex(b []byte) ([]int, []byte, error) {
	return topics.SplitProtobufIndex(b)
}

// installValueFormat gives c's schema the decoder of its schema.format, when that is not
// json: the registry must answer now (a wrong URL fails at start, with what to check);
// later, a registry that does not answer makes decoding wait and retry, logged.
// Lookups retry until ctx ends.
func installValueFormat(ctx context.Context, c *config.Compiled, log *zap.Logger, metrics prometheus.Registerer) error {
	if c.Schema.Format == "" || c.Schema.Format == pipeline.FormatJSON {
		return nil
	}
	reg, err := topics.NewSchemaRegistry(c.SchemaRegistryOptions())
	if err != nil {
		return err
	}
	if err := reg.Ping(ctx); err != nil {
		return err
	}
	if log == nil {
		log = zap.NewNop()
	}
	retries := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "streamscore_schema_registry_retries_total",
		Help: "Schema lookups that failed (the registry did not answer) and were tried again; the records waiting for them are not dead-lettered.",
	})
	if metrics != nil {
		if err := metrics.Register(retries); err != nil {
			return err
		}
	}
	f, err := wireformat.New(ctx, wireformat.Options{
		Kind: c.Schema.Format, Registry: registryAdapter{reg},
		OnRetry: func(id, attempt int, err error) {
			retries.Inc()
			log.Warn("the schema registry does not answer: decoding waits and retries", zap.Int("schema_id", id), zap.Int("attempt", attempt), zap.Error(err))
		},
	})
	if err != nil {
		return err
	}
	// A schema that cannot feed the plan fails now, not as a dead letter per event.
	for _, topic := range c.Topics.Input {
		latest, found, err := reg.Latest(ctx, topic+"-value")
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if err := f.CheckWriter(ctx, c.Schema, latest.ID); err != nil {
			return fmt.Errorf("the latest schema of %s-value (id %d) cannot feed schema.fields: %w: change schema.fields, or register a schema that has these fields", topic, latest.ID, err)
		}
	}
	c.Schema.SetValueFormat(f)
	return nil
}

// SimulatedEncoder registers the simulator's schema of format (avro: its first version,
// protobuf or json-schema) under <topic>-value and returns the encoder of its wire format,
// for `streamscore produce --format`.
func SimulatedEncoder(ctx context.Context, rc topics.SchemaRegistryConfig, topic, format string) (sim.Encoder, error) {
	var typ, text string
	var enc sim.Encoder
	var index []int
	var err error
	switch format {
	case pipeline.FormatAvro:
		typ, text = "AVRO", sim.AvroSchemas[0]
		enc, err = sim.AvroEncoder(0)
	case pipeline.FormatProtobuf:
		typ, text, index = "PROTOBUF", sim.ProtoSchema, []int{0}
		enc, err = sim.ProtoEncoder()
	case pipeline.FormatJSONSchema:
		typ, text, enc = "JSON", sim.JSONSchema, sim.JSONEncoder
	default:
		return nil, fmt.Errorf("--format %q: want json, avro, protobuf or json-schema", format)
	}
	if err != nil {
		return nil, err
	}
	reg, err := topics.NewSchemaRegistry(rc)
	if err != nil {
		return nil, err
	}
	id, err := reg.Register(ctx, topic+"-value", typ, text)
	if err != nil {
		return nil, err
	}
	return func(dst []byte, tx *sim.Tx) ([]byte, error) {
		dst, err := topics.AppendWireFormat(dst, id, index)
		if err != nil {
			return nil, err
		}
		return enc(dst, tx)
	}, nil
}
