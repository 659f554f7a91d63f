package lifecycle

import (
	"fmt"
	"strings"
)

// ParseExperimentFlags completes e from the flags of `experiment start` before anything is
// opened: --treatment MODEL@VERSION sets e.Model (it must agree with --model) and leaves
// the version in e.Treatment; a non-empty segment ("FIELD OP VALUE") becomes e.When.
func ParseExperimentFlags(e *ExperimentSpec, segment string) error {
	if model, version, ok := strings.Cut(e.Treatment, "@"); ok {
		if e.Model != "" && e.Model != model {
			return fmt.Errorf("--treatment %s is a version of %s, not of --model %s; %w", e.Treatment, model, e.Model, ErrRouting)
		}
		e.Model, e.Treatment = model, version
	}
	if segment == "" {
		return nil
	}
	c, err := ParseCondition(segment)
	if err != nil {
		return fmt.Errorf("--segment: %w; %w", err, ErrRouting)
	}
	e.When = &c
	return nil
}

// CheckServeFlags checks the flags of `model serve`: at least one --rule, or --off, not both.
func CheckServeFlags(rules []string, off bool) error {
	switch {
	case len(rules) == 0 && !off:
		return fmt.Errorf("give --rule (at least the default plan) or --off; %w", ErrRouting)
	case len(rules) > 0 && off:
		return fmt.Errorf("--off and --rule exclude each other; %w", ErrRouting)
	}
	return nil
}
