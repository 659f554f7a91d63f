package wireformat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/streamscore/streamscore/pipeline"
)

// memRegistry is an in-memory registry for the decoder's unit tests (the integration
// tests run against Apicurio); down makes it fail as an unreachable registry does.
type memRegistry struct {
	mu      sync.Mutex
	schemas map[int][2]string
	down    int // the next lookups that fail
	calls   int
}

func (m *memRegistry) WriterSchema(_ context.Context, id int) (string, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.down > 0 {
		m.down--
		return "", "", errors.New("connection refused")
	}
	s, ok := m.schemas[id]
	if !ok {
		return "", "", fmt.Errorf("id %d: %w", id, ErrUnknownSchema)
	}
	return s[0], s[1], nil
}

func (*memRegistry) Split(b []byte) (int, []byte, error) {
	if len(b) < 5 || b[0] != 0 {
		return 0, nil, errors.New("no magic byte")
	}
	return int(binary.BigEndian.Uint32(b[1:5])), b[5:], nil
}

func (*memRegistry) SplitIndex(b []byte) ([]int, []byte, error) {
	if len(b) == 0 || b[0] != 0 {
		return nil, nil, errors.New("only the first message")
	}
	return nil, b[1:], nil
}

func wire(id int, payload []byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(id)) //nolint:gosec // test ids are small
	return append(b, payload...)
}

const avroEvent = `{"type":"record","name":"E","fields":[
{"name":"id","type":"long"},
{"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
{"name":"skipme","type":{"type":"array","items":{"type":"map","values":"string"}}},
{"name":"shop","type":{"type":"record","name":"Shop","fields":[{"name":"country","type":"string"},{"name":"score","type":["null","double"]}]}},
{"name":"amount","type":["null","double"],"default":null}]}`

func planSchema(t *testing.T) *pipeline.Schema {
	t.Helper()
	s := &pipeline.Schema{Format: pipeline.FormatAvro, EventTime: "at", Fields: []pipeline.Field{
		{Name: "id", Type: pipeline.TypeInt, Required: true},
		{Name: "at", Type: pipeline.TypeTime, Required: true},
		{Name: "shop.country", Type: pipeline.TypeString, Required: true},
		{Name: "shop.score", Type: pipeline.TypeFloat},
		{Name: "amount", Type: pipeline.TypeFloat},
	}}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	return s
}

func newDecoder(t *testing.T, reg *memRegistry, kind string, s *pipeline.Schema) *pipeline.Decoder {
	t.Helper()
	f, err := New(t.Context(), Options{Kind: kind, Registry: reg, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.SetValueFormat(f)
	return pipeline.NewDecoder(s)
}

func TestAvroReadsNestedFieldsUnionsAndTimes(t *testing.T) {
	reg := &memRegistry{schemas: map[int][2]string{1: {"AVRO", avroEvent}}}
	s := planSchema(t)
	d := newDecoder(t, reg, pipeline.FormatAvro, s)
	sch := avro.MustParse(avroEvent)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	score := 0.25
	v, err := avro.Marshal(sch, map[string]any{"id": int64(42), "at": at, "skipme": []map[string]string{{"a": "b"}, {}},
		"shop": map[string]any{"country": "FR", "score": &score}, "amount": nil})
	if err != nil {
		t.Fatal(err)
	}
	ev := d.NewEvent()
	for range 2 { // the second decode runs from the decoder's cache
		if err := d.Decode(wire(1, v), time.Time{}, ev); err != nil {
			t.Fatal(err)
		}
	}
	if ev.Int[0] != 42 || ev.Int[1] != at.UnixNano() || ev.Str[2] != "FR" || ev.Num[3] != 0.25 || ev.Has(4) || !ev.Time.Equal(at) {
		t.Fatalf("decoded %+v", ev)
	}
	if reg.calls != 1 {
		t.Fatalf("%d registry lookups, want 1", reg.calls)
	}
}

func TestDeadLetterClasses(t *testing.T) {
	missing := `{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}`
	wrongType := `{"type":"record","name":"E","fields":[{"name":"id","type":"string"},{"name":"at","type":"long"},{"name":"shop","type":"string"}]}`
	reg := &memRegistry{schemas: map[int][2]string{1: {"AVRO", avroEvent}, 2: {"AVRO", missing}, 3: {"AVRO", wrongType}, 4: {"PROTOBUF", "syntax = \"proto3\";"}}}
	d := newDecoder(t, reg, pipeline.FormatAvro, planSchema(t))
	for _, tc := range []struct {
		name  string
		value []byte
		class pipeline.ErrorClass
	}{
		{"json, not wire format", []byte(`{"id":1}`), pipeline.ClassBadWireFormat},
		{"short header", []byte{0, 0, 1}, pipeline.ClassBadWireFormat},
		{"unknown id", wire(99, []byte{2}), pipeline.ClassUnknownSchema},
		{"writer lacks a required field", wire(2, []byte{2}), pipeline.ClassSchemaMismatch},
		{"writer has a type the plan cannot read", wire(3, []byte{2}), pipeline.ClassSchemaMismatch},
		{"writer is not Avro", wire(4, []byte{2}), pipeline.ClassSchemaMismatch},
		{"truncated payload", wire(1, []byte{2}), pipeline.ClassInvalidAvro},
		{"union branch out of range", wire(1, []byte{2, 2, 0, 4, 'F', 'R', 8}), pipeline.ClassInvalidAvro},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Decode(tc.value, time.Time{}, d.NewEvent())
			var de *pipeline.DecodeError
			if !errors.As(err, &de) || de.Class != tc.class {
				t.Fatalf("got %v, want class %s", err, tc.class)
			}
		})
	}
}

func TestProtobufAndJSONSchemaClasses(t *testing.T) {
	s := &pipeline.Schema{Fields: []pipeline.Field{{Name: "id", Type: pipeline.TypeInt, Required: true}}}
	s.Format = pipeline.FormatProtobuf
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	reg := &memRegistry{schemas: map[int][2]string{
		1: {"PROTOBUF", "syntax = \"proto3\"; message E { int64 id = 1; }"},
		2: {"JSON", `{"type":"object","properties":{"id":{"type":"integer","minimum":0}},"required":["id"]}`},
	}}
	pd := newDecoder(t, reg, pipeline.FormatProtobuf, s)
	ev := pd.NewEvent()
	if err := pd.Decode(wire(1, []byte{0, 0x08, 0x07}), time.Time{}, ev); err != nil || ev.Int[0] != 7 {
		t.Fatalf("protobuf: %v, id %d", err, ev.Int[0])
	}
	var de *pipeline.DecodeError
	if err := pd.Decode(wire(1, []byte{0, 0x08}), time.Time{}, ev); !errors.As(err, &de) || de.Class != pipeline.ClassInvalidProtobuf {
		t.Fatalf("truncated protobuf: %v", err)
	}
	js := *s
	js.Format = pipeline.FormatJSONSchema
	jd := newDecoder(t, reg, pipeline.FormatJSONSchema, &js)
	if err := jd.Decode(wire(2, []byte(`{"id":3}`)), time.Time{}, ev); err != nil || ev.Int[0] != 3 {
		t.Fatalf("json-schema: %v", err)
	}
	if err := jd.Decode(wire(2, []byte(`{"id":-3}`)), time.Time{}, ev); !errors.As(err, &de) || de.Class != pipeline.ClassSchemaViolation {
		t.Fatalf("violation: %v", err)
	}
}

// A registry that does not answer is waited for: the value decodes once it answers,
// never dead-lettered; after the run stops, the value is unavailable, not bad.
func TestRegistryDownIsNotABadRecord(t *testing.T) {
	reg := &memRegistry{schemas: map[int][2]string{1: {"AVRO", avroEvent}}, down: 3}
	s := planSchema(t)
	d := newDecoder(t, reg, pipeline.FormatAvro, s)
	v := avro.MustParse(avroEvent)
	b, err := avro.Marshal(v, map[string]any{"id": int64(1), "at": time.Unix(1, 0), "skipme": []map[string]string{},
		"shop": map[string]any{"country": "FR", "score": nil}, "amount": nil})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(wire(1, b), time.Time{}, d.NewEvent()); err != nil {
		t.Fatalf("after the registry came back: %v", err)
	}
	if reg.calls != 4 {
		t.Fatalf("%d lookups, want 4 (3 failed, then the answer)", reg.calls)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	reg.down = 1 << 30
	f, err := New(ctx, Options{Kind: pipeline.FormatAvro, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	s2 := planSchema(t)
	s2.SetValueFormat(f)
	err = pipeline.NewDecoder(s2).Decode(wire(1, b), time.Time{}, pipeline.NewDecoder(s2).NewEvent())
	if !pipeline.IsUnavailable(err) {
		t.Fatalf("registry down after stop: %v, want an UnavailableError", err)
	}
}

// FuzzDecodeAvro: any payload after a known schema id decodes or is a bad value with a
// class; it never panics and never reports anything else.
func FuzzDecodeAvro(f *testing.F) {
	sch := avro.MustParse(avroEvent)
	good, err := avro.Marshal(sch, map[string]any{"id": int64(1), "at": time.Unix(1, 0), "skipme": []map[string]string{{"k": "v"}},
		"shop": map[string]any{"country": "FR", "score": nil}, "amount": nil})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, payload []byte) {
		reg := &memRegistry{schemas: map[int][2]string{1: {"AVRO", avroEvent}}}
		d := newDecoder(t, reg, pipeline.FormatAvro, planSchema(t))
		err := d.Decode(wire(1, payload), time.Time{}, d.NewEvent())
		var de *pipeline.DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("%v is not a *DecodeError", err)
		}
	})
}
