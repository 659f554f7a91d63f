package drivers

import (
	"strings"
	"testing"

	"github.com/streamscore/streamscore/internal/config"
)

// TestWriteDriftReferenceRefusesABadStartAndLeavesTheConfig: a --train-start that is not a
// date is refused naming the flag and the format it wants, before anything is read; and
// building a reference never changes the caller's config (drift.reference is left out of
// a copy only).
func TestWriteDriftReferenceRefusesABadStartAndLeavesTheConfig(t *testing.T) {
	c, err := config.Load("../../streamscore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Drift.Reference = "reference.json"
	_, err = WriteDriftReference(c, DriftReferenceOptions{TrainStart: "25/07/2018", Features: "no.csv", Out: t.TempDir() + "/r.json"})
	if err == nil || !strings.Contains(err.Error(), "--train-start \"25/07/2018\": want YYYY-MM-DD") {
		t.Fatalf("a start that is not a date: err = %v; want it to name --train-start and YYYY-MM-DD", err)
	}
	c.Model.Path = t.TempDir() + "/missing.onnx"
	if _, err := WriteDriftReference(c, DriftReferenceOptions{TrainStart: "2018-07-25", Features: "no.csv", Out: t.TempDir() + "/r.json"}); err == nil {
		t.Fatal("a missing model.path: no error")
	}
	if c.Drift.Reference != "reference.json" {
		t.Fatalf("the caller's drift.reference became %q", c.Drift.Reference)
	}
}
