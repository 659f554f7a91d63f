package pipeline

import (
	"encoding/json"
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
	base := 0.01
	for i, feats := range [][]float32{nil, {1.5, -2}} {
		p.Features = feats
		// The second round carries every optional member: the id, the routing members and
		// an alert's reasons.
		if i == 1 {
			p.ID = json.RawMessage("1234")
			p.Experiment = &ExperimentArm{Name: "e", Arm: "treatment"}
			p.Ensemble = &EnsembleScores{Combine: CombineMean, Members: []MemberScore{{Version: "a", Score: 0.5}}}
			p.Cascade = &CascadeStages{Gate: 0.3, Stage: 2, Scores: []MemberScore{{Version: "a", Score: 0.4}}}
			p.BaseValue, p.Reasons, p.OtherContribution = &base, []Reason{{Feature: "TX_AMOUNT", Value: 3, Contribution: 0.1}}, 0.015
		}
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
		// hamba/avro gives a union's record or array branch as {"branch name": value}.
		branch := func(field, name string) any { return got[field].(map[string]any)[name] }
		if i == 1 && (got["id"] != "1234" || branch("experiment", "streamscore.Experiment").(map[string]any)["arm"] != "treatment" ||
			branch("reasons", "array").([]any)[0].(map[string]any)["feature"] != "TX_AMOUNT" || got["base_value"] != base) {
			t.Fatalf("round trip of the optional members: %v", got)
		}
		if i == 0 && got["id"] != nil {
			t.Fatalf("no id: want null, got %v", got["id"])
		}
	}
}
