package pipeline

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzPredictionRoundTrip: whatever the key and topic bytes and the score, the encoder
// writes JSON that the standard library parses back to the same source, key and score bits.
func FuzzPredictionRoundTrip(f *testing.F) {
	f.Add("transactions", []byte("596"), float32(0.0132), int64(1234))
	f.Add("t\"\\\n", []byte("\xff\x00\u2028\""), float32(1e-45), int64(-1))
	f.Add("", []byte(nil), float32(1), int64(0))
	e := newPredictionEncoder("fraud", "39e4b2f8")
	f.Fuzz(func(t *testing.T, topic string, key []byte, score float32, offset int64) {
		if math.IsNaN(float64(score)) || math.IsInf(float64(score), 0) {
			return // the model's scores are finite; NaN is not JSON
		}
		et := time.Date(2018, 4, 1, 0, 7, 56, 0, time.UTC)
		b := e.append(nil, topic, 3, offset, key, eventID{}, score, et, et, nil, nil)
		var p Prediction
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("encoder wrote invalid JSON %q: %v", b, err)
		}
		if math.Float32bits(p.Score) != math.Float32bits(score) {
			t.Fatalf("score %v came back as %v", score, p.Score)
		}
		if p.Source.Offset != offset || p.Source.Partition != 3 {
			t.Fatalf("source %+v", p.Source)
		}
		if utf8.ValidString(topic) && p.Source.Topic != topic {
			t.Fatalf("topic %q came back as %q", topic, p.Source.Topic)
		}
		if key == nil && p.Key != nil || key != nil && p.Key == nil {
			t.Fatalf("key %q came back as %v", key, p.Key)
		}
		if key != nil && utf8.Valid(key) && *p.Key != string(key) {
			t.Fatalf("key %q came back as %q", key, *p.Key)
		}
		if !p.EventTime.Equal(et) {
			t.Fatalf("event time %v", p.EventTime)
		}
	})
}

// The event time is written exactly as time.RFC3339Nano writes it, for any instant.
func TestAppendRFC3339NanoUTC(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		time.Date(2018, 4, 1, 0, 7, 56, 0, time.UTC),
		time.Date(2018, 4, 1, 0, 7, 56, 120_000_000, time.FixedZone("x", 3600)),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
	}
	for range 100_000 {
		times = append(times, time.Unix(0, r.Int64()-r.Int64()/2).Add(time.Duration(r.IntN(1000))))
	}
	for _, tm := range times {
		want := tm.UTC().Format(time.RFC3339Nano)
		if got := string(appendRFC3339NanoUTC([]byte("x"), tm)); got != "x"+want {
			t.Fatalf("%v: got %q, want %q", tm, got[1:], want)
		}
	}
}
