package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// parse runs the command's flag parsing on args and returns the plan it would measure.
func parse(t *testing.T, args ...string) (Plan, error) {
	t.Helper()
	var plan Plan
	cmd := newCommand(func(o *options) (err error) { plan, err = o.plan(); return err })
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	return plan, cmd.Execute()
}

func TestMainFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "streamscore")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := parse(t, "--bin", bin)
	if err != nil {
		t.Fatal(err)
	}
	if p.Events != 1_000_000 || p.Step != 2*time.Second || p.Repeats != DefaultRepeats || p.WarmupRounds != 1 || len(p.Stages) != 0 ||
		!reflect.DeepEqual(p.Scale, ScalePlan{Partitions: []int{1, 3, 6}, Events: []int{1_000_000, 5_000_000}}) ||
		p.Binary != bin || p.ChildLogLevel != "" || p.Profile != "" || p.Has(StageScale) || !p.Has(StageLatency) {
		t.Errorf("defaults: %+v", p)
	}
	p, err = parse(t, "--bin", bin, "--only", "c,d,s", "--events", "300", "--seconds", "0.5", "--repeats", "7",
		"--warmup-rounds", "0", "--rates", "1000,2500", "--log-level", "debug", "--pprof", "127.0.0.1:9999",
		"--scale-partitions", "2,4", "--scale-events", "300000")
	if err != nil {
		t.Fatal(err)
	}
	want := Plan{
		Events: 300, Step: 500 * time.Millisecond, Repeats: 7, Rates: []float64{1000, 2500},
		Stages: map[Stage]bool{StageCatchUp: true, StageLatency: true, StageScale: true},
		Binary: bin, ChildLogLevel: "debug", Profile: "127.0.0.1:9999",
		Features: "bin/bench/features.csv", CheapModel: "testdata/model/fraud-small.onnx",
		Scale: ScalePlan{Partitions: []int{2, 4}, Events: []int{300_000}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("flags:\n got %+v\nwant %+v", p, want)
	}
}

func TestMainFlagErrors(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "streamscore")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"unknown stage":         {[]string{"--only", "h"}, "--only"},
		"no repeats":            {[]string{"--repeats", "0"}, "--repeats"},
		"negative repeats":      {[]string{"--repeats", "-2"}, "--repeats"},
		"negative warm-up":      {[]string{"--warmup-rounds", "-1"}, "--warmup-rounds"},
		"negative rate":         {[]string{"--rates", "100,-1"}, "--rates"},
		"no seconds":            {[]string{"--seconds", "0"}, "--seconds"},
		"no events":             {[]string{"--events", "0", "--only", "c"}, "--events"},
		"zero partitions":       {[]string{"--only", "s", "--scale-partitions", "1,0"}, "--scale-partitions"},
		"no scale sizes":        {[]string{"--only", "s", "--scale-events", ""}, "--scale-events"},
		"not a number":          {[]string{"--repeats", "five"}, "--repeats"},
		"unknown flag":          {[]string{"--repeat", "5"}, "unknown flag"},
		"an argument":           {[]string{"extra"}, "extra"},
		"no binary for stage c": {[]string{"--only", "c", "--bin", "/nonexistent"}, "--bin"},
	} {
		args := c.args
		if !slices.Contains(args, "--bin") {
			args = append([]string{"--bin", bin}, args...)
		}
		if _, err := parse(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: error %v, want one naming %s", name, args, err, c.want)
		}
	}
}

// TestMainReplot runs Main end to end on a results.json of a run with repeats: it
// measures nothing, prints the table and redraws the plot.
func TestMainReplot(t *testing.T) {
	dir := t.TempDir()
	r := sampleResults()
	r.LatencySteps = []LatencyStep{summarizeStep(1000, noisyRuns())}
	if _, err := WriteResults(r, dir); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"--replot", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "5 runs, streamscore - Kafka floor") {
		t.Errorf("replot's table lacks the repeats:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, PlotFile)); err != nil {
		t.Errorf("no plot: %v", err)
	}
}
