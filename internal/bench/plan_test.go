package bench

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStages(t *testing.T) {
	s, err := ParseStages([]string{"b", "e"})
	if err != nil {
		t.Fatal(err)
	}
	p := Plan{Stages: s}
	for _, st := range []Stage{StageKafkaCeiling, StageScoringCeiling, StageCatchUp, StageLatency, StageBackfill, StageExactlyOnce} {
		if want := st == "b" || st == "e"; p.Has(st) != want {
			t.Errorf("--only b,e: Has(%s) = %v", st, !want)
		}
	}
	if all, err := ParseStages(nil); err != nil || !(Plan{Stages: all}).Has(StageLatency) {
		t.Errorf("no --only: want every stage (%v)", err)
	}
	for _, bad := range []string{"h", "ab", "", "bc"} {
		if _, err := ParseStages([]string{bad}); err == nil || !strings.Contains(err.Error(), "--only") {
			t.Errorf("--only %q: error %v, want one naming --only", bad, err)
		}
	}
}

func TestLatencyRates(t *testing.T) {
	if got := (Plan{}).latencyRates(0); !slices.Equal(got, []float64{1000, 10000, 50000}) {
		t.Errorf("default without catch-up: %v", got)
	}
	if got := (Plan{}).latencyRates(100_000); !slices.Equal(got, []float64{1000, 10000, 50000, 80000}) {
		t.Errorf("default with catch-up at 100k/s: %v", got)
	}
	if got := (Plan{Rates: []float64{500}}).latencyRates(100_000); !slices.Equal(got, []float64{500}) {
		t.Errorf("--rates 500: %v", got)
	}
}

func TestPlanValidate(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "streamscore")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := Plan{Events: 10, Step: time.Second, Binary: bin, Features: bin, CheapModel: bin}
	if err := ok.validate(); err != nil {
		t.Errorf("valid plan: %v", err)
	}
	onlyB := Plan{Stages: map[Stage]bool{StageScoringCeiling: true}, Binary: "/nonexistent"}
	if err := onlyB.validate(); err != nil {
		t.Errorf("stage b alone needs no binary, events or step: %v", err)
	}
	for name, c := range map[string]struct {
		p    Plan
		want string
	}{
		"no binary":                             {Plan{Events: 10, Step: time.Second, Binary: "/nonexistent"}, "--bin"},
		"a folder":                              {Plan{Events: 10, Step: time.Second, Binary: t.TempDir()}, "--bin"},
		"no events":                             {Plan{Step: time.Second, Binary: bin}, "--events"},
		"no step":                               {Plan{Events: 10, Binary: bin}, "--seconds"},
		"negative rate":                         {Plan{Events: 10, Step: time.Second, Binary: bin, Rates: []float64{1000, -5}}, "--rates"},
		"g, no CSV":                             {Plan{Stages: map[Stage]bool{StageCascade: true}, CheapModel: bin, Binary: bin}, "--features"},
		"g, no binary to write the missing CSV": {Plan{Stages: map[Stage]bool{StageCascade: true}, Features: "/nonexistent.csv", CheapModel: bin, Binary: "/nonexistent"}, "--bin"},
	} {
		if err := c.p.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", name, err, c.want)
		}
	}
}
