package lifecycle

import (
	"errors"
	"strings"
	"testing"

	"github.com/streamscore/streamscore/topics"
)

func TestParseExperimentFlags(t *testing.T) {
	for _, tc := range []struct {
		name, model, treatment, segment string
		wantModel, wantTreatment        string
		wantWhen                        *topics.Condition
		wantErr                         string
	}{
		{name: "version alone", treatment: "3f2a", wantTreatment: "3f2a"},
		{name: "model@version", treatment: "fraud@3f2a", wantModel: "fraud", wantTreatment: "3f2a"},
		{name: "agrees with --model", model: "fraud", treatment: "fraud@3f2a", wantModel: "fraud", wantTreatment: "3f2a"},
		{name: "disagrees with --model", model: "other", treatment: "fraud@3f2a", wantErr: "--treatment fraud@3f2a is a version of fraud, not of --model other"},
		{name: "segment", treatment: "3f2a", segment: "tx_amount >= 1000", wantTreatment: "3f2a",
			wantWhen: &topics.Condition{Field: "tx_amount", Op: ">=", Value: 1000}},
		{name: "bad segment", treatment: "3f2a", segment: "tx_amount >= lots", wantErr: `--segment: condition "tx_amount >= lots": value "lots" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ExperimentSpec{Model: tc.model, Experiment: topics.Experiment{Treatment: tc.treatment}}
			err := ParseExperimentFlags(&e, tc.segment)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrRouting) {
					t.Fatalf("err %v, want one containing %q and wrapping ErrRouting", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Model != tc.wantModel || e.Treatment != tc.wantTreatment {
				t.Errorf("model %q treatment %q, want %q %q", e.Model, e.Treatment, tc.wantModel, tc.wantTreatment)
			}
			if (e.When == nil) != (tc.wantWhen == nil) || (e.When != nil && *e.When != *tc.wantWhen) {
				t.Errorf("when %+v, want %+v", e.When, tc.wantWhen)
			}
		})
	}
}

func TestCheckServeFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rules   []string
		off     bool
		wantErr string
	}{
		{name: "rules", rules: []string{"3f2a"}},
		{name: "off", off: true},
		{name: "neither", wantErr: "give --rule (at least the default plan) or --off"},
		{name: "both", rules: []string{"3f2a"}, off: true, wantErr: "--off and --rule exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckServeFlags(tc.rules, tc.off)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrRouting) {
				t.Fatalf("err %v, want one containing %q and wrapping ErrRouting", err, tc.wantErr)
			}
		})
	}
}
