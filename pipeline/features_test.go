package pipeline

import (
	"errors"
	"math"
	"testing"
	"time"
)

func referenceFeatures(t testing.TB, s *Schema) *FeatureSpec {
	t.Helper()
	fs := &FeatureSpec{Features: []Feature{
		{Name: "TX_AMOUNT", Field: "tx_amount"},
		{Name: "TX_DURING_WEEKEND", Field: "tx_datetime", Transform: TransformWeekend},
		{Name: "TX_DURING_NIGHT", Field: "tx_datetime", Transform: TransformNight},
	}}
	if err := fs.Compile(s); err != nil {
		t.Fatal(err)
	}
	return fs
}

func eventAt(ts string, amount string) string {
	return `{"transaction_id":1,"tx_datetime":"` + ts + `","customer_id":2,"terminal_id":3,"tx_amount":` + amount + `}`
}

func TestReferenceFeatures(t *testing.T) {
	s := referenceSchema(t)
	fs := referenceFeatures(t, s)
	d := NewDecoder(s)
	ev := d.NewEvent()
	cases := []struct {
		ts, amount string
		want       [3]float32
	}{
		{"2018-04-01T00:07:56Z", "57.16", [3]float32{57.16, 1, 1}},   // Sunday, night
		{"2018-04-02T06:59:59Z", "0", [3]float32{0, 0, 1}},           // Monday 06:59 is night (hour <= 6)
		{"2018-04-02T07:00:00Z", "10.5", [3]float32{10.5, 0, 0}},     // Monday 07:00 is day
		{"2018-04-07T12:00:00Z", "1000000", [3]float32{1e6, 1, 0}},   // Saturday
		{"2018-04-06T23:59:59Z", "220.01", [3]float32{220.01, 0, 0}}, // Friday
		// a non-UTC offset is converted to UTC first: Saturday 01:00+02:00 is Friday 23:00Z
		{"2018-04-07T01:00:00+02:00", "1", [3]float32{1, 0, 0}},
	}
	for _, c := range cases {
		if err := d.Decode([]byte(eventAt(c.ts, c.amount)), time.Time{}, ev); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 3)
		if err := fs.Extract(ev, got); err != nil {
			t.Fatal(err)
		}
		if [3]float32(got) != c.want {
			t.Errorf("%s %s: features %v, want %v", c.ts, c.amount, got, c.want)
		}
	}
}

func TestFeatureTransformsAndDefaults(t *testing.T) {
	s := &Schema{Fields: []Field{
		{Name: "amount", Type: TypeFloat, Required: true},
		{Name: "ts", Type: TypeTime, Required: true},
		{Name: "mcc", Type: TypeString},
		{Name: "country", Type: TypeInt},
		{Name: "tip", Type: TypeFloat},
	}, EventTime: "ts"}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	fs := &FeatureSpec{Features: []Feature{
		{Name: "log_amount", Field: "amount", Transform: TransformLog1p},
		{Name: "hour", Field: "ts", Transform: TransformHour},
		{Name: "weekday", Field: "ts", Transform: TransformWeekday},
		{Name: "mcc_risk", Field: "mcc", Transform: TransformLookup, Lookup: map[string]float64{"5411": 0.1, "7995": 0.9}, Default: ptr(0.5)},
		{Name: "country_risk", Field: "country", Transform: TransformLookup, Lookup: map[string]float64{"250": 0.2}},
		{Name: "tip", Field: "tip", Default: ptr(-1)},
	}}
	if err := fs.Compile(s); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(s)
	ev := d.NewEvent()
	got := make([]float32, fs.Len())
	check := func(in string, want []float32) {
		t.Helper()
		if err := d.Decode([]byte(in), time.Time{}, ev); err != nil {
			t.Fatal(err)
		}
		if err := fs.Extract(ev, got); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: feature %s = %v, want %v (all: %v)", in, fs.Features[i].Name, got[i], want[i], got)
			}
		}
	}
	check(`{"amount":99,"ts":"2018-04-04T13:30:00Z","mcc":"7995","country":250,"tip":2}`,
		[]float32{float32(math.Log1p(99)), 13, 3, 0.9, 0.2, 2})
	// absent optional fields and lookup misses take the defaults; a miss with no default is 0
	check(`{"amount":0,"ts":"2018-04-01T00:00:00Z","mcc":"0000","country":1}`,
		[]float32{0, 0, 0, 0.5, 0, -1})
}

func TestFeatureSpecCompileErrors(t *testing.T) {
	s := referenceSchema(t)
	for _, f := range []Feature{
		{Name: "x", Field: "nope"},
		{Name: "x", Field: "tx_amount", Transform: "sqrt"},
		{Name: "x", Field: "tx_amount", Transform: TransformWeekend},
		{Name: "x", Field: "tx_datetime", Transform: TransformLog1p},
		{Name: "x", Field: "channel"}, // optional string, numeric transform
		{Name: "x", Field: "channel", Transform: TransformLookup},
		{Name: "", Field: "tx_amount"},
	} {
		fs := &FeatureSpec{Features: []Feature{f}}
		if err := fs.Compile(s); err == nil {
			t.Errorf("Compile(%+v) = nil, want an error", f)
		}
	}
	fs := &FeatureSpec{Features: []Feature{{Name: "a", Field: "tx_amount"}, {Name: "a", Field: "tx_amount"}}}
	if err := fs.Compile(s); err == nil {
		t.Error("duplicate feature names accepted")
	}
}

func TestLog1pOfMinusOneIsAFeatureError(t *testing.T) {
	s := &Schema{Fields: []Field{{Name: "x", Type: TypeFloat, Required: true}}}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	fs := &FeatureSpec{Features: []Feature{{Name: "lx", Field: "x", Transform: TransformLog1p}}}
	if err := fs.Compile(s); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(s)
	ev := d.NewEvent()
	if err := d.Decode([]byte(`{"x":-1}`), time.Unix(0, 0), ev); err != nil {
		t.Fatal(err)
	}
	err := fs.Extract(ev, make([]float32, 1))
	var de *DecodeError
	if !errors.As(err, &de) || de.Class != ClassFeature {
		t.Fatalf("Extract = %v, want a feature-class DecodeError", err)
	}
}
