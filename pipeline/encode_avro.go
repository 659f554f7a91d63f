package pipeline

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Predictions (and alerts, which are predictions) in Avro, for output.format avro. The
// record schema is derived from Prediction, the one declared list of a prediction's
// fields: a field added there (with its json tag) is in the Avro schema too. Pointer and
// slice fields, and every field after the first version's, must be optional (a pointer,
// a slice, or tagged omitempty): they become ["null", T] with default null, so each new
// version of the schema reads the records of the ones before (BACKWARD).

// PredictionAvroSchema is the Avro schema of a prediction record.
func PredictionAvroSchema() string {
	b, err := json.Marshal(avroRecordType(reflect.TypeFor[Prediction](), "Prediction"))
	if err != nil {
		panic(err) // only maps, slices and strings: cannot fail
	}
	return string(b)
}

var (
	timeType = reflect.TypeFor[time.Time]()
	// rawType is the event id's type: in Avro, its JSON text as a string ("1234" for a
	// number, "\"a-1\"" for a string), null when the event had none.
	rawType = reflect.TypeFor[json.RawMessage]()
)

// jsonName is a struct field's json name and whether it is optional (omitempty).
func jsonName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, strings.Contains(opts, "omitempty")
}

func avroRecordType(t reflect.Type, name string) map[string]any {
	fields := []any{}
	for i := range t.NumField() {
		f := t.Field(i)
		n, optional := jsonName(f)
		if n == "-" || !f.IsExported() {
			continue
		}
		typ := avroType(f.Type, n)
		field := map[string]any{"name": n, "type": typ}
		if optional || f.Type.Kind() == reflect.Pointer || f.Type.Kind() == reflect.Slice {
			if f.Type.Kind() == reflect.Pointer {
				typ = avroType(f.Type.Elem(), n)
			}
			field["type"], field["default"] = []any{"null", typ}, nil
		}
		fields = append(fields, field)
	}
	return map[string]any{"type": "record", "name": name, "namespace": "streamscore", "fields": fields}
}

func avroType(t reflect.Type, name string) any {
	switch t {
	case timeType:
		return map[string]any{"type": "long", "logicalType": "timestamp-micros"}
	case rawType:
		return "string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int32, reflect.Int16, reflect.Int8:
		return "int"
	case reflect.Int, reflect.Int64, reflect.Uint32:
		return "long"
	case reflect.Float32:
		return "float"
	case reflect.Float64:
		return "double"
	case reflect.Pointer:
		return avroType(t.Elem(), name)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": avroType(t.Elem(), name)}
	case reflect.Map:
		return map[string]any{"type": "map", "values": avroType(t.Elem(), name)}
	case reflect.Struct:
		return avroRecordType(t, recordName(name))
	}
	panic(fmt.Sprintf("prediction field %s: no Avro type for %s", name, t))
}

// recordName is the Avro name of the record a field of that json name holds.
func recordName(jsonName string) string { return strings.ToUpper(jsonName[:1]) + jsonName[1:] }

// PredictionAvroValue is p as the generic value hamba/avro marshals with
// PredictionAvroSchema: records as maps by json name, optional fields nil when empty.
func PredictionAvroValue(p *Prediction) map[string]any {
	return avroValue(reflect.ValueOf(p).Elem()).(map[string]any)
}

func avroValue(v reflect.Value) any {
	switch v.Type() {
	case timeType:
		return v.Interface()
	case rawType:
		if raw := v.Bytes(); len(raw) > 0 && string(raw) != "null" {
			return string(raw)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return avroValue(v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = avroValue(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[it.Key().String()] = avroValue(it.Value())
		}
		return out
	case reflect.Struct:
		return avroRecordValue(v)
	}
	return v.Interface()
}

// avroRecordValue is a struct as a record's generic value: fields by json name.
func avroRecordValue(v reflect.Value) map[string]any {
	t := v.Type()
	out := make(map[string]any, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		n, optional := jsonName(f)
		if n == "-" || !f.IsExported() {
			continue
		}
		x := avroValue(v.Field(i))
		if optional && v.Field(i).IsZero() {
			x = nil
		}
		if x != nil && f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct {
			// A record in a ["null", record] union: hamba/avro takes a generic map as
			// the union's {"full name": value} form, so the record is named.
			x = map[string]any{"streamscore." + recordName(n): x}
		}
		out[n] = x
	}
	return out
}
