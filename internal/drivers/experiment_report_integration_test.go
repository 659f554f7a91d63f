//go:build integration

package drivers

import (
	"bytes"
	"testing"

	"github.com/streamscore/streamscore/internal/evaluate"
)

// TestExperimentReportOnKafka runs the report and its acceptance check (the counts of a
// test's own join of the topics, the rates to 1e-9) on Apache Kafka, on predictions in
// the contract's format.
func TestExperimentReportOnKafka(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	produceExperimentOutputs(t, c, "exp24", 5000)
	rep := checkExperimentReport(t, c, "exp24")
	if len(rep.Arms) != 2 || rep.Duplicates != 500 || rep.Arms[0].Events+rep.Arms[1].Events != 5000 {
		t.Fatalf("report %+v", rep)
	}
	var b bytes.Buffer
	if err := evaluate.Print(&b, rep); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}
