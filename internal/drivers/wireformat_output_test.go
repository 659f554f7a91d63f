package drivers

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/streamscore/streamscore/pipeline"
)

// An Avro prediction read back the way tail and verify read it (PredictionJSON's decode,
// then the JSON form) equals the prediction written, every optional member included.
func TestAvroPredictionReadsBackAsItsJSONForm(t *testing.T) {
	sch := avro.MustParse(pipeline.PredictionAvroSchema())
	key, base := "596", 0.01
	var p pipeline.Prediction
	p.Source.Topic, p.Source.Partition, p.Source.Offset = "transactions", 1, 7
	p.Key, p.ID, p.Score = &key, json.RawMessage("1234"), 0.75
	p.Model.Name, p.Model.Version = "fraud", "mean(a,b)"
	p.Experiment = &pipeline.ExperimentArm{Name: "e", Arm: "control"}
	p.Ensemble = &pipeline.EnsembleScores{Combine: pipeline.CombineMean, Members: []pipeline.MemberScore{{Version: "a", Score: 0.5}, {Version: "b", Score: 1}}}
	p.EventTime = time.Date(2018, 4, 1, 0, 7, 56, 0, time.UTC)
	p.ScoredAt = p.EventTime.Add(time.Minute)
	p.Features = []float32{1, 2}
	p.BaseValue, p.Reasons, p.OtherContribution = &base, []pipeline.Reason{{Feature: "TX_AMOUNT", Value: 57.16, Contribution: 0.5}}, 0.24
	b, err := avro.Marshal(sch, pipeline.PredictionAvroValue(&p))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := avro.Unmarshal(sch, b, &v); err != nil {
		t.Fatal(err)
	}
	js, err := predictionJSON(sch, v)
	if err != nil {
		t.Fatal(err)
	}
	var got pipeline.Prediction
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("read back %+v\nwant %+v\n(JSON %s)", got, p, js)
	}
}
