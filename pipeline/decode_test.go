package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func ptr(f float64) *float64 { return &f }

// referenceSchema is the schema of streamscore.yaml.
func referenceSchema(t testing.TB) *Schema {
	t.Helper()
	s := &Schema{
		EventTime: "tx_datetime",
		MaxBytes:  64 << 10,
		MaxDepth:  16,
		Fields: []Field{
			{Name: "transaction_id", Type: TypeInt, Required: true, Min: ptr(0)},
			{Name: "tx_datetime", Type: TypeTime, Required: true},
			{Name: "customer_id", Type: TypeInt, Required: true, Min: ptr(0)},
			{Name: "terminal_id", Type: TypeInt, Required: true, Min: ptr(0)},
			{Name: "tx_amount", Type: TypeFloat, Required: true, Min: ptr(0), Max: ptr(1e6)},
			{Name: "channel", Type: TypeString},
		},
	}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	return s
}

const goodEvent = `{"transaction_id":1234,"tx_datetime":"2018-04-01T00:07:56Z","customer_id":596,"terminal_id":3156,"tx_amount":57.16}`

func TestDecodeGood(t *testing.T) {
	s := referenceSchema(t)
	d := NewDecoder(s)
	ev := d.NewEvent()
	for _, in := range []string{
		goodEvent,
		// unknown members of every kind, nested, and whitespace are ignored
		`{ "extra": {"a":[1,2,{"b":null}]}, "transaction_id" : 1234, "tx_datetime":"2018-04-01T00:07:56Z",
		   "customer_id":596,"terminal_id":3156,"tx_amount":57.16, "tx_fraud": 1, "channel": "pos"}`,
		`{"tx_amount":57.16,"terminal_id":3156,"customer_id":596,"tx_datetime":"2018-04-01T00:07:56Z","transaction_id":1234}`,
	} {
		if err := d.Decode([]byte(in), time.Time{}, ev); err != nil {
			t.Fatalf("Decode(%s): %v", in, err)
		}
		if ev.Int[0] != 1234 || ev.Int[2] != 596 || ev.Int[3] != 3156 || ev.Num[4] != 57.16 {
			t.Fatalf("decoded %+v", ev)
		}
		if want := time.Date(2018, 4, 1, 0, 7, 56, 0, time.UTC); !ev.Time.Equal(want) {
			t.Fatalf("event time %v, want %v", ev.Time, want)
		}
	}
}

func TestDecodeRecordTimeWhenNoEventTimeField(t *testing.T) {
	s := &Schema{Fields: []Field{{Name: "x", Type: TypeFloat, Required: true}}}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(s)
	ev := d.NewEvent()
	rt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := d.Decode([]byte(`{"x":1}`), rt, ev); err != nil {
		t.Fatal(err)
	}
	if !ev.Time.Equal(rt) {
		t.Fatalf("event time %v, want the record time %v", ev.Time, rt)
	}
}

// TestDecodeBadInput covers every class of bad input: each must be a *DecodeError of the
// expected class, never a panic.
func TestDecodeBadInput(t *testing.T) {
	s := referenceSchema(t)
	d := NewDecoder(s)
	ev := d.NewEvent()
	replace := func(old, new string) string { return strings.Replace(goodEvent, old, new, 1) }
	cases := []struct {
		name  string
		in    string
		class ErrorClass
		field string
	}{
		{"empty", "", ClassEmpty, ""},
		{"oversize", `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`, ClassOversize, ""},
		{"invalid utf8 in key", replace(`"tx_datetime"`, "\"tx_\xffdatetime\""), ClassInvalidUTF8, ""},
		{"invalid utf8 in value", replace(`"2018-04-01T00:07:56Z"`, "\"2018\xc3\x28\""), ClassInvalidUTF8, ""},
		{"truncated", goodEvent[:40], ClassInvalidJSON, ""},
		{"trailing garbage", goodEvent + "}", ClassInvalidJSON, ""},
		{"NaN literal", replace(`57.16`, `NaN`), ClassInvalidJSON, ""},
		{"Infinity literal", replace(`57.16`, `Infinity`), ClassInvalidJSON, ""},
		{"two objects", goodEvent + goodEvent, ClassInvalidJSON, ""},
		{"array", "[" + goodEvent + "]", ClassNotObject, ""},
		{"string", `"hello"`, ClassNotObject, ""},
		{"number", `42`, ClassNotObject, ""},
		{"null", `null`, ClassNotObject, ""},
		{"missing amount", replace(`,"tx_amount":57.16`, ``), ClassMissingField, "tx_amount"},
		{"null amount", replace(`57.16`, `null`), ClassMissingField, "tx_amount"},
		{"amount as string", replace(`57.16`, `"57.16"`), ClassWrongType, "tx_amount"},
		{"amount as bool", replace(`57.16`, `true`), ClassWrongType, "tx_amount"},
		{"amount as object", replace(`57.16`, `{"v":57.16}`), ClassWrongType, "tx_amount"},
		{"amount as array", replace(`57.16`, `[57.16]`), ClassWrongType, "tx_amount"},
		{"id as float", replace(`1234`, `1234.5`), ClassWrongType, "transaction_id"},
		{"id overflows int64", replace(`1234`, `99999999999999999999`), ClassWrongType, "transaction_id"},
		{"time not RFC 3339", replace(`2018-04-01T00:07:56Z`, `01/04/2018`), ClassWrongType, "tx_datetime"},
		{"time as number", replace(`"2018-04-01T00:07:56Z"`, `1522541276`), ClassWrongType, "tx_datetime"},
		{"amount overflows float64", replace(`57.16`, `1e999`), ClassNonFinite, "tx_amount"},
		{"negative amount", replace(`57.16`, `-3`), ClassOutOfRange, "tx_amount"},
		{"absurd amount", replace(`57.16`, `1e12`), ClassOutOfRange, "tx_amount"},
		{"negative customer", replace(`596`, `-596`), ClassOutOfRange, "customer_id"},
		{"duplicate key", replace(`"tx_amount":57.16`, `"tx_amount":57.16,"tx_amount":1`), ClassDuplicateKey, "tx_amount"},
		{"deep nesting", replace(`{`, `{"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`,`), ClassTooDeep, ""},
		{"string channel as number", replace(`{`, `{"channel":5,`), ClassWrongType, "channel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := d.Decode([]byte(c.in), time.Time{}, ev)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%q) = %v, want a *DecodeError of class %s", clip([]byte(c.in)), err, c.class)
			}
			if de.Class != c.class || de.Field != c.field {
				t.Fatalf("Decode(%q): class %s field %q (%v), want class %s field %q", clip([]byte(c.in)), de.Class, de.Field, de, c.class, c.field)
			}
		})
	}
	// the decoder is reusable after errors
	if err := d.Decode([]byte(goodEvent), time.Time{}, ev); err != nil {
		t.Fatalf("good event after bad ones: %v", err)
	}
}

func TestSchemaCompileErrors(t *testing.T) {
	for _, s := range []Schema{
		{},
		{Fields: []Field{{Name: "a", Type: "decimal"}}},
		{Fields: []Field{{Name: "a", Type: TypeInt}, {Name: "a", Type: TypeInt}}},
		{Fields: []Field{{Name: "a", Type: TypeInt}}, EventTime: "b"},
		{Fields: []Field{{Name: "a", Type: TypeInt, Required: true}}, EventTime: "a"},
		{Fields: []Field{{Name: "a", Type: TypeFloat, Min: ptr(2), Max: ptr(1)}}},
	} {
		if err := s.Compile(); err == nil {
			t.Errorf("Compile(%+v) = nil, want an error", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(goodEvent))
	f.Add([]byte(`{"tx_amount":1e999}`))
	f.Add([]byte("{\"a\":\"\xff\"}"))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Add([]byte(`{"transaction_id":1,"transaction_id":2}`))
	s := referenceSchema(f)
	spec := referenceFeatures(f, s)
	ref := NewDecoder(s)
	ref.reference = true
	refEv := ref.NewEvent()
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(s)
		ev := d.NewEvent()
		err := d.Decode(in, time.Unix(0, 0), ev)
		// The fast path and the reference path agree on every input.
		refErr := ref.Decode(in, time.Unix(0, 0), refEv)
		if fmt.Sprint(err) != fmt.Sprint(refErr) {
			t.Fatalf("fast path: %v; reference path: %v", err, refErr)
		}
		if err == nil && !sameEvent(ev, refEv) {
			t.Fatalf("fast path decoded %+v; reference path %+v", ev, refEv)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Class == "" {
				t.Fatalf("error %v is not a classified *DecodeError", err)
			}
			return
		}
		// A decoded event has every required field and finite numbers in range.
		for i, fl := range s.Fields {
			if fl.Required && !ev.Has(i) {
				t.Fatalf("required field %s missing after a successful decode", fl.Name)
			}
			if ev.Has(i) && (math.IsNaN(ev.Num[i]) || math.IsInf(ev.Num[i], 0)) {
				t.Fatalf("field %s not finite: %v", fl.Name, ev.Num[i])
			}
		}
		feat := make([]float32, spec.Len())
		if err := spec.Extract(ev, feat); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("feature error %v is not a *DecodeError", err)
			}
			return
		}
		for i, x := range feat {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("feature %d not finite: %v", i, x)
			}
		}
	})
}

func sameEvent(a, b *Event) bool {
	if a.Present != b.Present || !a.Time.Equal(b.Time) {
		return false
	}
	for i := range a.Num {
		if a.Present&(1<<uint(i)) == 0 {
			continue
		}
		if math.Float64bits(a.Num[i]) != math.Float64bits(b.Num[i]) || a.Int[i] != b.Int[i] || a.Str[i] != b.Str[i] {
			return false
		}
	}
	return true
}

// The fast path takes the ordinary events, and gives up, leaving the verdict to the
// reference path, on the rest; both agree on every one of these.
func TestDecodeFastPathAgreesWithReference(t *testing.T) {
	s := referenceSchema(t)
	d := NewDecoder(s)
	if !d.decodeFast([]byte(goodEvent), d.NewEvent()) {
		t.Fatal("the fast path gave up on an ordinary event")
	}
	ref := NewDecoder(s)
	ref.reference = true
	const tail = `"tx_datetime":"2018-04-01T00:07:56Z","customer_id":596,"terminal_id":3156,"tx_amount":57.16`
	cases := map[string]bool{ // input: whether the fast path should take it
		goodEvent: true,
		" \n\t{ \"transaction_id\" : 1 , " + tail + " }\r\n":                               true,
		`{"transaction_id":1,"extra":{"a":[1,2,{"b":null}],"c":"\u00e9\n"},` + tail + `}`:  true,
		`{"transaction_id":1,"x":1,"x":2,` + tail + `}`:                                    true,
		`{"transaction_id":1,"x":-0.5e+10,"y":[],"z":{},"t":true,"f":false,` + tail + `}`:  true,
		`{"transaction_id":1,` + tail + `,"tx_amount":2}`:                                  false, // duplicate
		`{"transaction_id":1,` + tail + `,}`:                                               false,
		`{"transaction_id":1,` + tail + `}x`:                                               false,
		`{"transaction_id":1,` + tail + `}}`:                                               false,
		`{"transaction_id":01,` + tail + `}`:                                               false,
		`{"transaction_id":1.,` + tail + `}`:                                               false,
		`{"transaction_id":-,` + tail + `}`:                                                false,
		`{"transaction_id":1e,` + tail + `}`:                                               false,
		`{"transaction_id":1.5,` + tail + `}`:                                              false,
		`{"transaction_id":"1",` + tail + `}`:                                              false,
		`{"transaction_id":null,` + tail + `}`:                                             false,
		`{"transaction_id":tru,` + tail + `}`:                                              false,
		`{"transaction_id":1,"x":"\x",` + tail + `}`:                                       false,
		`{"transaction_id":1,"x":"\u12g4",` + tail + `}`:                                   false,
		"{\"transaction_id\":1,\"x\":\"a\tb\"," + tail + "}":                               false, // raw control character
		`{"transaction_id":1,"x":[1,],` + tail + `}`:                                       false,
		`{"transaction_id":1,"x":[1 2],` + tail + `}`:                                      false,
		`{"transaction_id":1,"x":{"a"},` + tail + `}`:                                      false,
		`{"transaction_id":1,"x":{1:2},` + tail + `}`:                                      false,
		`{"transaction_id":1 "x":1,` + tail + `}`:                                          false,
		`{"trans\u0061ction_id":1,` + tail + `}`:                                           false, // escaped key
		`{"transaction_id":1,"tx_datetime":"2018-04-01T00:07:56\u005a",` + tail[37:] + `}`: false,
		`{"transaction_id":1,"tx_datetime":"yesterday",` + tail[37:] + `}`:                 false,
		`{"transaction_id":-1,` + tail + `}`:                                               false, // below min
		`{"transaction_id":1}`:                                                             false, // missing fields
		`{}`:                                                                               false,
		`[]`:                                                                               false,
		`"x"`:                                                                              false,
		`{"transaction_id":1,"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `,` + tail + `}`: false,
	}
	for in, fast := range cases {
		ev, refEv := d.NewEvent(), ref.NewEvent()
		if got := d.decodeFast([]byte(in), ev); got != fast {
			t.Errorf("decodeFast(%s) = %v, want %v", in, got, fast)
		}
		err := d.Decode([]byte(in), time.Unix(0, 0), ev)
		refErr := ref.Decode([]byte(in), time.Unix(0, 0), refEv)
		if fmt.Sprint(err) != fmt.Sprint(refErr) {
			t.Errorf("%s: fast path %v, reference %v", in, err, refErr)
		}
		if err == nil && !sameEvent(ev, refEv) {
			t.Errorf("%s: fast path %+v, reference %+v", in, ev, refEv)
		}
		if fast && err != nil {
			t.Errorf("%s: fast path took it, but Decode = %v", in, err)
		}
	}
}

func TestRequireKey(t *testing.T) {
	s := referenceSchema(t)
	s.RequireKey = true
	d := NewDecoder(s)
	var de *DecodeError
	if err := d.CheckKey(nil); !errors.As(err, &de) || de.Class != ClassMissingKey {
		t.Fatalf("CheckKey(nil) = %v, want missing_key", err)
	}
	if err := d.CheckKey([]byte("596")); err != nil {
		t.Fatal(err)
	}
	s.RequireKey = false
	if err := d.CheckKey(nil); err != nil {
		t.Fatalf("key not required, but CheckKey(nil) = %v", err)
	}
}
