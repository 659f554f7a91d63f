package main

import (
	"strings"
	"testing"
)

// TestExperimentReportCmd checks the command's wiring: it sits under `experiment` of the
// root, wants exactly one name and has --json.
func TestExperimentReportCmd(t *testing.T) {
	root := newRoot()
	cmd, rest, err := root.Find([]string{"experiment", "report"})
	if err != nil || len(rest) != 0 || cmd.CommandPath() != "streamscore experiment report" {
		t.Fatalf("experiment report: %v (rest %q, found %q)", err, rest, cmd.CommandPath())
	}
	if f := cmd.Flags().Lookup("json"); f == nil || f.DefValue != "false" {
		t.Error("no --json flag")
	}
	root.SetArgs([]string{"experiment", "report"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "accepts 1 arg") {
		t.Errorf("no name: %v", err)
	}
}
