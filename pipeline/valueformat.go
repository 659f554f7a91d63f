package pipeline

import (
	"context"
	"errors"
	"time"
)

// The error classes of values in a Schema Registry's wire format (schema.format avro,
// protobuf or json-schema).
const (
	ClassBadWireFormat   ErrorClass = "bad_wire_format"  // no magic byte, or a header too short
	ClassUnknownSchema   ErrorClass = "unknown_schema"   // the registry has no schema with the value's id
	ClassSchemaMismatch  ErrorClass = "schema_mismatch"  // the writer schema cannot feed the schema's fields
	ClassInvalidAvro     ErrorClass = "invalid_avro"     // the payload does not decode with its writer schema
	ClassInvalidProtobuf ErrorClass = "invalid_protobuf" // the payload does not decode as its message
	ClassSchemaViolation ErrorClass = "schema_violation" // the JSON payload breaks its JSON Schema
)

// The values of schema.format.
const (
	FormatJSON       = "json"
	FormatAvro       = "avro"
	FormatProtobuf   = "protobuf"
	FormatJSONSchema = "json-schema"
)

// ValueFormat decodes record values that are not plain JSON: each value names its writer
// schema, which the format resolves (once per schema) and checks against the Schema's
// fields. A ValueFormat is shared by every decoder of a Schema and must be safe for
// concurrent use; the ValueDecoders it makes are used by one goroutine each.
type ValueFormat interface {
	NewValueDecoder(s *Schema) ValueDecoder
}

// ValueDecoder fills an event from one value. It sets ev.Present and the Num/Int/Str
// slots of the fields it finds (as the JSON decoder does: time as unix nanoseconds in Int
// and unix seconds in Num); Decode then checks required fields and bounds and sets the
// event time. The error is a *DecodeError for a bad value, or an *UnavailableError when
// the value cannot be decoded now.
type ValueDecoder interface {
	DecodeValue(value []byte, ev *Event) error
}

// ContextValueDecoder is a ValueDecoder whose waits (a registry that does not answer)
// end when the context given by SetContext ends: the fetch loop gives it its stop
// context, so that a stop request during an outage is not held up by the wait.
type ContextValueDecoder interface {
	ValueDecoder
	SetContext(ctx context.Context)
}

// SetContext bounds the waits of the decoder's ValueFormat (see ContextValueDecoder).
func (d *Decoder) SetContext(ctx context.Context) {
	if cd, ok := d.vd.(ContextValueDecoder); ok {
		cd.SetContext(ctx)
	}
}

// UnavailableError says that a value could not be decoded because something it needs
// (its writer schema, from a registry that does not answer) could not be had before the
// run stopped. The record is not bad: it is neither dead-lettered nor committed, and is
// read again by the next run.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "value not decodable now: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err is an *UnavailableError.
func IsUnavailable(err error) bool {
	var ue *UnavailableError
	return errors.As(err, &ue)
}

// SetValueFormat makes every Decoder of s made from now on decode values with f (nil:
// plain JSON). Drivers call it once, before the operator starts.
func (s *Schema) SetValueFormat(f ValueFormat) { s.format = f }

// NewBadValue returns the *DecodeError of a bad value, for ValueFormat implementations.
func NewBadValue(class ErrorClass, field, format string, args ...any) *DecodeError {
	return badEvent(class, field, format, args...)
}

// decodeFormatted decodes value with the schema's ValueFormat, then applies the checks
// that the JSON decoder applies as it goes: required fields and numeric bounds.
func (d *Decoder) decodeFormatted(value []byte, recordTime time.Time, ev *Event) error {
	ev.Present = 0
	if err := d.vd.DecodeValue(value, ev); err != nil {
		return err
	}
	s := d.s
	for i := range s.Fields {
		f := &s.Fields[i]
		if !ev.Has(i) {
			if f.Required {
				return badEvent(ClassMissingField, f.Name, "required field is missing or null")
			}
			continue
		}
		if f.Type == TypeString {
			continue
		}
		x := ev.Num[i]
		if f.Min != nil && x < *f.Min {
			return badEvent(ClassOutOfRange, f.Name, "%v is below the minimum %v", x, *f.Min)
		}
		if f.Max != nil && x > *f.Max {
			return badEvent(ClassOutOfRange, f.Name, "%v is above the maximum %v", x, *f.Max)
		}
	}
	d.setTime(recordTime, ev)
	return nil
}
