// Package wireformat decodes input events written in a Schema Registry's wire format
// (Confluent's: a magic byte, a 4-byte schema id, the payload) as Avro, Protobuf or JSON
// Schema, into the same pipeline.Event the JSON decoder fills, so that the feature plan
// reads the same named fields whatever the format. Each writer schema id is fetched once,
// compiled against the plan once, and cached; a registry that does not answer is waited
// for, never taken for a bad record.
package wireformat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/streamscore/streamscore/pipeline"
)

// ErrUnknownSchema is what a Registry returns (wrapped) when it answers that a schema id
// does not exist.
var ErrUnknownSchema = errors.New("unknown schema id")

// Registry resolves writer schemas and splits wire-format headers (topics implements it
// over franz-go's pkg/sr). It must be safe for concurrent use.
type Registry interface {
	// WriterSchema returns the type (AVRO, PROTOBUF or JSON) and text of schema id.
	WriterSchema(ctx context.Context, id int) (typ, text string, err error)
	// Split splits a value into its schema id and payload.
	Split(value []byte) (id int, payload []byte, err error)
	// SplitIndex splits a Protobuf payload into its message-index list and the message.
	SplitIndex(payload []byte) (index []int, msg []byte, err error)
}

// Options are a Format's settings.
type Options struct {
	// Kind is pipeline.FormatAvro, FormatProtobuf or FormatJSONSchema.
	Kind     string
	Registry Registry
	// Backoff is the first wait between attempts when the registry does not answer
	// (0: 200ms); it doubles up to 5s.
	Backoff time.Duration
	// OnRetry is called (from the decoding goroutine) each time a lookup failed and will
	// be tried again: the driver's log line and metric.
	OnRetry func(id int, attempt int, err error)
}

// Format is a pipeline.ValueFormat over a registry. It is safe for concurrent use.
type Format struct {
	ctx context.Context
	o   Options

	mu      sync.Mutex
	writers map[int]*writer // by schema id: compiled, or why it cannot be read
}

// writer is one writer schema, compiled against the plan.
type writer struct {
	bad   *pipeline.DecodeError // unknown_schema or schema_mismatch: every value of it
	avro  *avroOp
	proto *protoPlan
	json  *jsonschema.Schema
}

// New returns a Format. Lookups that fail for a reason other than an unknown id are
// retried until they succeed or ctx ends; after ctx ends, decoding a value whose schema
// is not cached returns a *pipeline.UnavailableError.
func New(ctx context.Context, o Options) (*Format, error) {
	switch o.Kind {
	case pipeline.FormatAvro, pipeline.FormatProtobuf, pipeline.FormatJSONSchema:
	default:
		return nil, fmt.Errorf("schema.format %q: want avro, protobuf or json-schema", o.Kind)
	}
	if o.Registry == nil {
		return nil, errors.New("wireformat: no registry")
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	return &Format{ctx: ctx, o: o, writers: map[int]*writer{}}, nil
}

// NewValueDecoder implements pipeline.ValueFormat.
func (f *Format) NewValueDecoder(s *pipeline.Schema) pipeline.ValueDecoder {
	plain := *s
	plain.SetValueFormat(nil)
	d := &decoder{f: f, s: s, local: map[int]*writer{}, r: avro.NewReader(nil, 0)}
	if f.o.Kind == pipeline.FormatJSONSchema {
		d.json = pipeline.NewDecoder(&plain)
	}
	return d
}

// CheckWriter fetches schema id and checks that it can feed s: the start-up check of a
// configured schema, and the tests'.
func (f *Format) CheckWriter(ctx context.Context, s *pipeline.Schema, id int) error {
	typ, text, err := f.o.Registry.WriterSchema(ctx, id)
	if err != nil {
		return err
	}
	w := f.compile(s, typ, text)
	if w.bad != nil {
		return w.bad
	}
	return nil
}

// writer returns the compiled writer schema id, fetching it on first use.
func (f *Format) writer(ctx context.Context, s *pipeline.Schema, id int) (*writer, error) {
	if ctx == nil {
		ctx = f.ctx
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(f.ctx, cancel)
		defer stop()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if w, ok := f.writers[id]; ok {
		return w, nil
	}
	wait := f.o.Backoff
	for attempt := 1; ; attempt++ {
		typ, text, err := f.o.Registry.WriterSchema(ctx, id)
		if err == nil {
			w := f.compile(s, typ, text)
			f.writers[id] = w
			return w, nil
		}
		if errors.Is(err, ErrUnknownSchema) {
			w := &writer{bad: pipeline.NewBadValue(pipeline.ClassUnknownSchema, "", "schema id %d: the registry has no such schema", id)}
			f.writers[id] = w
			return w, nil
		}
		if ctx.Err() != nil {
			return nil, &pipeline.UnavailableError{Err: fmt.Errorf("schema id %d: %w", id, err)}
		}
		if f.o.OnRetry != nil {
			f.o.OnRetry(id, attempt, err)
		}
		select {
		case <-ctx.Done():
			return nil, &pipeline.UnavailableError{Err: fmt.Errorf("schema id %d: %w", id, err)}
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// compile compiles a writer schema against the plan; a schema that cannot feed it makes
// every value written with it a schema_mismatch.
func (f *Format) compile(s *pipeline.Schema, typ, text string) *writer {
	var w writer
	var err error
	want := map[string]string{pipeline.FormatAvro: "AVRO", pipeline.FormatProtobuf: "PROTOBUF", pipeline.FormatJSONSchema: "JSON"}[f.o.Kind]
	if typ != want {
		err = fmt.Errorf("the writer schema is %s, but schema.format is %s", typ, f.o.Kind)
	} else {
		switch f.o.Kind {
		case pipeline.FormatAvro:
			w.avro, err = compileAvro(text, s)
		case pipeline.FormatProtobuf:
			w.proto, err = compileProto(text, s)
		default:
			w.json, err = compileJSONSchema(text, s)
		}
	}
	if err != nil {
		return &writer{bad: pipeline.NewBadValue(pipeline.ClassSchemaMismatch, "", "%v", err)}
	}
	return &w
}

// decoder is one goroutine's ValueDecoder: a lock-free cache in front of the Format's.
type decoder struct {
	f     *Format
	s     *pipeline.Schema
	local map[int]*writer
	r     *avro.Reader
	json  *pipeline.Decoder
	msgs  map[protoreflect.MessageDescriptor]*dynamicpb.Message
	ctx   context.Context // nil: the Format's
}

// SetContext implements pipeline.ContextValueDecoder.
func (d *decoder) SetContext(ctx context.Context) { d.ctx = ctx }

func (d *decoder) DecodeValue(value []byte, ev *pipeline.Event) error {
	id, payload, err := d.f.o.Registry.Split(value)
	if err != nil {
		return pipeline.NewBadValue(pipeline.ClassBadWireFormat, "", "not in the schema registry wire format (magic byte 0, 4-byte schema id): %v", err)
	}
	w, ok := d.local[id]
	if !ok {
		if w, err = d.f.writer(d.ctx, d.s, id); err != nil {
			return err
		}
		d.local[id] = w
	}
	switch {
	case w.bad != nil:
		return w.bad
	case w.avro != nil:
		return d.decodeAvro(w.avro, payload, ev)
	case w.proto != nil:
		return d.decodeProto(w.proto, payload, ev)
	default:
		return d.decodeJSON(w.json, payload, ev)
	}
}

func (d *decoder) decodeAvro(op *avroOp, payload []byte, ev *pipeline.Event) error {
	d.r.Reset(payload)
	d.r.Error = nil
	if err := op.run(d.r, ev, d.s); err != nil {
		return err
	}
	if d.r.Error != nil {
		return pipeline.NewBadValue(pipeline.ClassInvalidAvro, "", "the payload does not decode with its writer schema: %v", d.r.Error)
	}
	return nil
}
