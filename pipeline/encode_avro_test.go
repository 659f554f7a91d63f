package pipeline

import (
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// A prediction round-trips through its derived Avro schema, optional fields included.
func TestPredictionAvroRoundTrip(t *testing.T) {
	sch, err := avro.Parse(PredictionAvroSchema())
	if err != nil {
		t.Fatalf("derived schema %s: %v", PredictionAvroSchema(), err)
	}
	key := "k1"
	var p Prediction
	p.Source.Topic, p.Source.Partition, p.Source.Offset = "tx", 2, 42
	p.Key, p.Score = &key, 0.125
	p.Model.Name, p.Model.Version = "fraud", "v3"
	p.EventTime = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	p.ScoredAt = p.EventTime.Add(time.Second)
	for _, feats := range [][]float32{nil, {1.5, -2}} {
		p.Features = feats
		b, err := avro.Marshal(sch, PredictionAvroValue(&p))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := avro.Unmarshal(sch, b, &got); err != nil {
			t.Fatal(err)
		}
		if got["score"] != float32(0.125) || got["key"] != "k1" || !got["event_time"].(time.Time).Equal(p.EventTime) ||
			got["source"].(map[string]any)["offset"] != int64(42) || (feats == nil) != (got["features"] == nil) {
			t.Fatalf("round trip: %v", got)
		}
	}
}
