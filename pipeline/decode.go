package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
)

// FieldType is the JSON type a schema field must have.
type FieldType string

// The field types of a schema.
const (
	TypeInt    FieldType = "int"    // a JSON integer (no fraction, no exponent)
	TypeFloat  FieldType = "float"  // any finite JSON number
	TypeString FieldType = "string" // a JSON string
	TypeTime   FieldType = "time"   // an RFC 3339 string, e.g. 2018-04-01T00:07:56Z
)

// Field is one top-level member of an input event.
type Field struct {
	Name     string    `yaml:"name"`
	Type     FieldType `yaml:"type"`
	Required bool      `yaml:"required"`
	// Min and Max bound numeric values (for time: unix seconds); outside them the event is
	// absurd and dead-lettered.
	Min *float64 `yaml:"min,omitempty"`
	Max *float64 `yaml:"max,omitempty"`
}

// Schema describes the events of the input topics. Members not named are ignored.
type Schema struct {
	Fields []Field `yaml:"fields"`
	// EventTime names the time field that is the event's time. When empty, the Kafka
	// record timestamp is the event time.
	EventTime string `yaml:"event_time"`
	// MaxBytes bounds the size of a record value; larger ones are dead-lettered.
	MaxBytes int `yaml:"max_bytes"`
	// MaxDepth bounds the nesting of ignored members.
	MaxDepth int `yaml:"max_depth"`
	// RequireKey dead-letters records without a key: outputs are keyed like their input,
	// so a keyless input breaks per-key ordering downstream.
	RequireKey bool `yaml:"require_key"`
	// KeyField names the field whose value is the record key (an int in decimal, or a
	// string). When set, a record whose key differs is dead-lettered (key_mismatch): the
	// partitioning by that key is what makes per-key windows exact.
	KeyField string `yaml:"key_field,omitempty"`
	// Format is how values are encoded: json (default), or avro, protobuf or json-schema
	// in a Schema Registry's wire format (valueformat.go; the drivers install the decoder).
	Format string `yaml:"format,omitempty"`

	format    ValueFormat
	index     map[string]int
	eventTime int
	keyField  int
}

// ErrorClass names why an event could not be scored. It is the error.class header of the
// dead letter and the reason label of the dead-letter metric.
type ErrorClass string

// The error classes: each names a way an input can be bad, and the dead-letter table
// of docs/topics-and-formats.md says what each means.
const (
	ClassOversize     ErrorClass = "oversize"
	ClassEmpty        ErrorClass = "empty"
	ClassMissingKey   ErrorClass = "missing_key"
	ClassInvalidUTF8  ErrorClass = "invalid_utf8"
	ClassInvalidJSON  ErrorClass = "invalid_json"
	ClassNotObject    ErrorClass = "not_object"
	ClassMissingField ErrorClass = "missing_field"
	ClassWrongType    ErrorClass = "wrong_type"
	ClassDuplicateKey ErrorClass = "duplicate_key"
	ClassNonFinite    ErrorClass = "non_finite"
	ClassOutOfRange   ErrorClass = "out_of_range"
	ClassTooDeep      ErrorClass = "too_deep"
	ClassFeature      ErrorClass = "feature"
	ClassKeyMismatch  ErrorClass = "key_mismatch"
)

// DecodeError is the error for an event that cannot be scored.
type DecodeError struct {
	Class ErrorClass
	Field string
	Msg   string
}

func (e *DecodeError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: field %q: %s", e.Class, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Class, e.Msg)
}

func badEvent(class ErrorClass, field, format string, args ...any) *DecodeError {
	return &DecodeError{Class: class, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Compile checks the schema and prepares it for decoding.
func (s *Schema) Compile() error {
	if len(s.Fields) == 0 {
		return errors.New("schema: no fields")
	}
	if len(s.Fields) > 64 {
		return errors.New("schema: more than 64 fields")
	}
	if s.MaxBytes <= 0 {
		s.MaxBytes = 64 << 10
	}
	if s.MaxDepth <= 0 {
		s.MaxDepth = 16
	}
	switch s.Format {
	case "", FormatJSON, FormatAvro, FormatProtobuf, FormatJSONSchema:
	default:
		return fmt.Errorf("schema.format %q: want json, avro, protobuf or json-schema", s.Format)
	}
	s.index = make(map[string]int, len(s.Fields))
	s.eventTime = -1
	for i, f := range s.Fields {
		if err := s.checkField(i, &f); err != nil {
			return err
		}
		s.index[f.Name] = i
	}
	var err error
	if s.eventTime, err = s.resolveEventTime(); err != nil {
		return err
	}
	s.keyField, err = s.resolveKeyField()
	return err
}

// checkField checks field i against itself and the fields before it.
func (s *Schema) checkField(i int, f *Field) error {
	if f.Name == "" {
		return fmt.Errorf("schema: field %d has no name", i)
	}
	if _, dup := s.index[f.Name]; dup {
		return fmt.Errorf("schema: field %q is listed twice", f.Name)
	}
	switch f.Type {
	case TypeInt, TypeFloat, TypeString, TypeTime:
	default:
		return fmt.Errorf("schema: field %q: type %q, want int, float, string or time", f.Name, f.Type)
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		return fmt.Errorf("schema: field %q: min %v is above max %v", f.Name, *f.Min, *f.Max)
	}
	return nil
}

// resolveEventTime returns the position of the event-time field, or -1 without one.
func (s *Schema) resolveEventTime() (int, error) {
	if s.EventTime == "" {
		return -1, nil
	}
	i, ok := s.index[s.EventTime]
	if !ok {
		return -1, fmt.Errorf("schema: event_time %q is not a field", s.EventTime)
	}
	if s.Fields[i].Type != TypeTime || !s.Fields[i].Required {
		return -1, fmt.Errorf("schema: event_time %q must be a required field of type time", s.EventTime)
	}
	return i, nil
}

// resolveKeyField returns the position of the key field, or -1 without one.
func (s *Schema) resolveKeyField() (int, error) {
	if s.KeyField == "" {
		return -1, nil
	}
	i, ok := s.index[s.KeyField]
	if !ok {
		return -1, fmt.Errorf("schema: key_field %q is not a field", s.KeyField)
	}
	if t := s.Fields[i].Type; (t != TypeInt && t != TypeString) || !s.Fields[i].Required {
		return -1, fmt.Errorf("schema: key_field %q must be a required int or string field", s.KeyField)
	}
	return i, nil
}

// FieldIndex returns the position of a field, or -1.
func (s *Schema) FieldIndex(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

// Event is a decoded input event. Numeric and time fields are held in Num (time as unix
// seconds) and, for int and time fields, exactly in Int (time as unix nanoseconds). An
// Event is reused between records: a Decoder fills it in place.
type Event struct {
	Num     []float64
	Int     []int64
	Str     []string
	Present uint64 // bit i set when field i was present
	Time    time.Time
}

// Has reports whether field i was present.
func (e *Event) Has(i int) bool { return e.Present&(1<<uint(i)) != 0 }

// Decoder decodes JSON events against a schema. It is not safe for concurrent use; each
// goroutine that decodes keeps its own.
type Decoder struct {
	s         *Schema
	tok       *json.Tokenizer
	reference bool // tests: always take the reference path
	vd        ValueDecoder
}

// NewDecoder returns a decoder for a compiled schema.
func NewDecoder(s *Schema) *Decoder {
	d := &Decoder{s: s, tok: json.NewTokenizer(nil)}
	if s.format != nil {
		d.vd = s.format.NewValueDecoder(s)
	}
	return d
}

// NewEvent returns an Event sized for the decoder's schema.
func (d *Decoder) NewEvent() *Event {
	n := len(d.s.Fields)
	return &Event{Num: make([]float64, n), Int: make([]int64, n), Str: make([]string, n)}
}

// CheckKey applies the schema's key rule to a record key.
func (d *Decoder) CheckKey(key []byte) error {
	if d.s.RequireKey && len(key) == 0 {
		return badEvent(ClassMissingKey, "", "record has no key")
	}
	return nil
}

// CheckKeyField checks that the record key is the value of the schema's key field.
func (d *Decoder) CheckKeyField(key []byte, ev *Event) error {
	i := d.s.keyField
	if i < 0 {
		return nil
	}
	var ok bool
	if d.s.Fields[i].Type == TypeString {
		ok = string(key) == ev.Str[i]
	} else {
		n, err := strconv.ParseInt(string(key), 10, 64)
		ok = err == nil && n == ev.Int[i]
	}
	if !ok {
		return badEvent(ClassKeyMismatch, d.s.KeyField, "record key %s is not the event's %s", clip(key), d.s.KeyField)
	}
	return nil
}

// Decode parses value into ev. recordTime is the Kafka record timestamp, used as the event
// time when the schema names no event-time field. The error, when not nil, is a
// *DecodeError.
func (d *Decoder) Decode(value []byte, recordTime time.Time, ev *Event) error {
	s := d.s
	if len(value) == 0 {
		return badEvent(ClassEmpty, "", "record has no value")
	}
	if len(value) > s.MaxBytes {
		return badEvent(ClassOversize, "", "value is %d bytes, above the limit of %d", len(value), s.MaxBytes)
	}
	if d.vd != nil {
		return d.decodeFormatted(value, recordTime, ev)
	}
	if !utf8.Valid(value) {
		return badEvent(ClassInvalidUTF8, "", "value is not valid UTF-8")
	}
	if !d.reference && d.decodeFast(value, ev) {
		d.setTime(recordTime, ev)
		return nil
	}
	return d.decodeReference(value, recordTime, ev)
}

// setTime sets ev.Time from the event-time field or, without one, the record time.
func (d *Decoder) setTime(recordTime time.Time, ev *Event) {
	if d.s.eventTime >= 0 {
		ev.Time = time.Unix(0, ev.Int[d.s.eventTime]).UTC()
	} else {
		ev.Time = recordTime.UTC()
	}
}

// decodeReference is the reference decoder (json.Valid, then the tokenizer): it classifies
// every value the fast path gives up on.
func (d *Decoder) decodeReference(value []byte, recordTime time.Time, ev *Event) error {
	s := d.s
	if !json.Valid(value) {
		return badEvent(ClassInvalidJSON, "", "value is not valid JSON")
	}
	ev.Present = 0
	t := d.tok
	t.Reset(value)
	if !t.Next() || t.Delim != '{' {
		return badEvent(ClassNotObject, "", "value is not a JSON object")
	}
	field := -1
	for t.Next() {
		if t.Depth > s.MaxDepth+1 {
			return badEvent(ClassTooDeep, "", "nesting deeper than %d", s.MaxDepth)
		}
		if t.Depth != 1 {
			continue // inside an ignored member
		}
		if t.Delim != 0 {
			if t.Delim == '{' || t.Delim == '[' {
				if field >= 0 {
					f := &s.Fields[field]
					return badEvent(ClassWrongType, f.Name, "got an %s, want %s", containerName(t.Delim), f.Type)
				}
			}
			continue
		}
		if t.IsKey {
			key := t.String()
			i, ok := s.index[string(key)] // no allocation: the compiler optimises map[string(b)]
			if !ok {
				field = -1
				continue
			}
			if ev.Present&(1<<uint(i)) != 0 {
				return badEvent(ClassDuplicateKey, s.Fields[i].Name, "member appears more than once")
			}
			field = i
			continue
		}
		if field < 0 {
			continue
		}
		if err := d.setField(field, t, ev); err != nil {
			return err
		}
		ev.Present |= 1 << uint(field)
		field = -1
	}
	if t.Err != nil {
		return badEvent(ClassInvalidJSON, "", "%v", t.Err)
	}
	for i := range s.Fields {
		if s.Fields[i].Required && ev.Present&(1<<uint(i)) == 0 {
			return badEvent(ClassMissingField, s.Fields[i].Name, "required member is missing")
		}
	}
	d.setTime(recordTime, ev)
	return nil
}

func containerName(d json.Delim) string {
	if d == '{' {
		return "object"
	}
	return "array"
}

func (d *Decoder) setField(i int, t *json.Tokenizer, ev *Event) error {
	f := &d.s.Fields[i]
	v := t.Value
	if v.Null() {
		if f.Required {
			return badEvent(ClassMissingField, f.Name, "required member is null")
		}
		return nil
	}
	switch f.Type {
	case TypeInt:
		if !v.Number() {
			return badEvent(ClassWrongType, f.Name, "got %s, want an integer", kindName(v))
		}
		n, err := strconv.ParseInt(string(v), 10, 64) // no allocation: string(v) does not escape
		if err != nil {
			return badEvent(ClassWrongType, f.Name, "%s is not a 64-bit integer", clip(v))
		}
		ev.Int[i] = n
		ev.Num[i] = float64(n)
	case TypeFloat:
		if !v.Number() {
			return badEvent(ClassWrongType, f.Name, "got %s, want a number", kindName(v))
		}
		x, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return badEvent(ClassNonFinite, f.Name, "%s is not a finite 64-bit number", clip(v))
		}
		ev.Num[i] = x
	case TypeString:
		if !v.String() {
			return badEvent(ClassWrongType, f.Name, "got %s, want a string", kindName(v))
		}
		ev.Str[i] = string(t.String())
		return nil
	case TypeTime:
		if !v.String() {
			return badEvent(ClassWrongType, f.Name, "got %s, want an RFC 3339 time string", kindName(v))
		}
		raw := t.String()
		ts, err := time.Parse(time.RFC3339Nano, string(raw))
		if err != nil {
			return badEvent(ClassWrongType, f.Name, "%s is not an RFC 3339 time", clip(raw))
		}
		ev.Int[i] = ts.UnixNano()
		ev.Num[i] = float64(ts.Unix())
	}
	x := ev.Num[i]
	if f.Min != nil && x < *f.Min {
		return badEvent(ClassOutOfRange, f.Name, "%v is below the minimum %v", x, *f.Min)
	}
	if f.Max != nil && x > *f.Max {
		return badEvent(ClassOutOfRange, f.Name, "%v is above the maximum %v", x, *f.Max)
	}
	return nil
}

func kindName(v json.RawValue) string {
	switch {
	case v.String():
		return "a string"
	case v.Number():
		return "a number"
	case v.True(), v.False():
		return "a boolean"
	}
	return "null"
}

func clip(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}
