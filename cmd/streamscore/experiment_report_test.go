package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestExperimentReportCmd checks the command's wiring: it reads the root's persistent
// flags, so run outside the root it says so, and under it it wants exactly one name.
func TestExperimentReportCmd(t *testing.T) {
	alone := newExperimentReportCmd()
	alone.SetArgs([]string{"exp"})
	if err := alone.Execute(); err == nil || !strings.Contains(err.Error(), "under the streamscore root command") {
		t.Errorf("outside the root: %v", err)
	}
	root := newRoot()
	exp := &cobra.Command{Use: "experiment"}
	exp.AddCommand(newExperimentReportCmd())
	root.AddCommand(exp)
	root.SetArgs([]string{"experiment", "report"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "accepts 1 arg") {
		t.Errorf("no name: %v", err)
	}
	if f := exp.Commands()[0].Flags().Lookup("json"); f == nil || f.DefValue != "false" {
		t.Error("no --json flag")
	}
}
