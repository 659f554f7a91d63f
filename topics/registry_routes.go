package topics

import (
	"encoding/json"
	"fmt"
)

// The roles of activations that route events among several versions of one model name.
// They are activations, so that instances follow them, State replays them and switch
// markers record them, exactly like a live or shadow activation.
const (
	// RoleServe replaces what serves the model name by Activation.Rules (segment rules
	// whose plans are versions, ensembles or cascades); no rules: the live version alone.
	RoleServe Role = "serve"
	// RoleExperiment starts Activation.Experiment on the model name.
	RoleExperiment Role = "experiment"
	// RoleExperimentStop ends the experiment Activation.Experiment.Name.
	RoleExperimentStop Role = "experiment-stop"
)

// The combiners of an ensemble.
const (
	CombineMean     = "mean"
	CombineMax      = "max"
	CombineWeighted = "weighted" // weighted mean, Ensemble.Weights
)

// Plan is one way of serving an event: exactly one of Version, Ensemble and Cascade.
type Plan struct {
	Version  string    `json:"version,omitempty"`
	Ensemble *Ensemble `json:"ensemble,omitempty"`
	Cascade  *Cascade  `json:"cascade,omitempty"`
}

// Ensemble scores every row with each member and combines the scores.
type Ensemble struct {
	Combine string    `json:"combine"`
	Members []string  `json:"members"`
	Weights []float64 `json:"weights,omitempty"`
}

// Cascade scores every row with First; rows scoring at or above Gate are scored again,
// by Second, whose score is theirs.
type Cascade struct {
	First  string  `json:"first"`
	Second string  `json:"second"`
	Gate   float64 `json:"gate"`
}

// Condition compares a numeric field of the event with Value: Field Op Value.
type Condition struct {
	Field string  `json:"field"`
	Op    string  `json:"op"` // >=, >, <=, <, ==, !=
	Value float64 `json:"value"`
}

// Rule serves the events its condition holds for with Serve; the last rule has no
// condition: it is the default.
type Rule struct {
	When  *Condition `json:"when,omitempty"`
	Serve Plan       `json:"serve"`
}

// Experiment splits the keys of a model's events between the version that serves them
// (control) and Treatment, by a hash of (Name, Salt, key): Share percent of keys get the
// treatment.
type Experiment struct {
	Name      string  `json:"name"`
	Salt      string  `json:"salt,omitempty"`
	Share     float64 `json:"share"` // percent of keys, 0 < Share < 100
	Treatment string  `json:"treatment"`
	// Mirror also scores every event with the other arm's plan into the shadow topic.
	Mirror bool `json:"mirror,omitempty"`
	// When, when set, is the segment the experiment runs on: events it does not hold for
	// are served as without the experiment.
	When *Condition `json:"when,omitempty"`
}

// Routing is what serves a model name besides its live version: the segment rules (none:
// the live version) and the running experiment. A switch marker carries it (as JSON), so
// that a replay routes each event as live scoring did.
type Routing struct {
	Rules      []Rule      `json:"rules,omitempty"`
	Experiment *Experiment `json:"experiment,omitempty"`
}

// Empty reports whether nothing but the live version serves.
func (r Routing) Empty() bool { return len(r.Rules) == 0 && r.Experiment == nil }

// checkRouting refuses an activation of a routing role that lacks its part.
func checkRouting(a Activation) error {
	switch a.Role {
	case RoleServe:
		for i, r := range a.Rules {
			if (r.When == nil) != (i == len(a.Rules)-1) {
				return fmt.Errorf("serving %s: rule %d: every rule but the last needs a condition, and the last (the default) has none", a.Name, i+1)
			}
		}
	case RoleExperiment, RoleExperimentStop:
		if a.Experiment == nil || a.Experiment.Name == "" {
			return fmt.Errorf("appending %s activation of %s: no experiment name", a.Role, a.Name)
		}
		if err := ValidModelName(a.Experiment.Name); err != nil {
			return fmt.Errorf("experiment: %w", err)
		}
	}
	return nil
}

// DecodeRouting reads the routing a switch marker carries.
func DecodeRouting(raw json.RawMessage) (Routing, error) {
	var r Routing
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("switch marker routing: %w", err)
	}
	return r, nil
}
