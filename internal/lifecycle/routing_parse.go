package lifecycle

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/streamscore/streamscore/topics"
)

// ParseRule reads a segment rule as `streamscore model serve --rule` takes it:
// "FIELD OP VALUE => PLAN" (OP one of >=, >, <=, <, ==, !=), or "PLAN" for the last
// rule, the default. A PLAN is a version (a unique prefix will do), an ensemble
// mean(V1,V2,...), max(V1,V2,...) or weighted(V1:W1,V2:W2,...), or a cascade
// cascade(FIRST>=GATE:SECOND).
func ParseRule(s string) (topics.Rule, error) {
	var r topics.Rule
	cond, plan, ok := strings.Cut(s, "=>")
	if !ok {
		plan, cond = s, ""
	}
	if cond = strings.TrimSpace(cond); cond != "" {
		c, err := parseCondition(cond)
		if err != nil {
			return r, fmt.Errorf("rule %q: %w", s, err)
		}
		r.When = &c
	} else if ok {
		return r, fmt.Errorf("rule %q: no condition before =>; the default rule is the plan alone", s)
	}
	p, err := ParsePlan(plan)
	if err != nil {
		return r, fmt.Errorf("rule %q: %w", s, err)
	}
	r.Serve = p
	return r, nil
}

// ParseCondition reads "FIELD OP VALUE", e.g. "tx_amount >= 1000" (an experiment's
// --segment).
func ParseCondition(s string) (topics.Condition, error) { return parseCondition(s) }

func parseCondition(s string) (topics.Condition, error) {
	var c topics.Condition
	f := strings.Fields(s)
	if len(f) != 3 {
		return c, fmt.Errorf("condition %q: want FIELD OP VALUE, e.g. tx_amount >= 1000, with spaces between", s)
	}
	v, err := strconv.ParseFloat(f[2], 64)
	if err != nil {
		return c, fmt.Errorf("condition %q: value %q is not a number", s, f[2])
	}
	return topics.Condition{Field: f[0], Op: f[1], Value: v}, nil
}

// ParsePlan reads a plan (see ParseRule).
func ParsePlan(s string) (topics.Plan, error) {
	s = strings.TrimSpace(s)
	kind, args, ok := strings.Cut(s, "(")
	if !ok {
		if s == "" || strings.ContainsAny(s, " ,:)") {
			return topics.Plan{}, fmt.Errorf("plan %q: want VERSION, mean(V1,V2), max(V1,V2), weighted(V1:W1,V2:W2) or cascade(FIRST>=GATE:SECOND)", s)
		}
		return topics.Plan{Version: s}, nil
	}
	if !strings.HasSuffix(args, ")") {
		return topics.Plan{}, fmt.Errorf("plan %q: no closing parenthesis", s)
	}
	args = strings.TrimSuffix(args, ")")
	switch kind {
	case topics.CombineMean, topics.CombineMax:
		return topics.Plan{Ensemble: &topics.Ensemble{Combine: kind, Members: splitList(args)}}, nil
	case topics.CombineWeighted:
		e := &topics.Ensemble{Combine: kind}
		for _, m := range splitList(args) {
			v, w, ok := strings.Cut(m, ":")
			x, err := strconv.ParseFloat(w, 64)
			if !ok || err != nil {
				return topics.Plan{}, fmt.Errorf("plan %q: member %q: want VERSION:WEIGHT", s, m)
			}
			e.Members, e.Weights = append(e.Members, v), append(e.Weights, x)
		}
		return topics.Plan{Ensemble: e}, nil
	case "cascade":
		first, rest, ok1 := strings.Cut(args, ">=")
		gate, second, ok2 := strings.Cut(rest, ":")
		g, err := strconv.ParseFloat(strings.TrimSpace(gate), 64)
		if !ok1 || !ok2 || err != nil {
			return topics.Plan{}, fmt.Errorf("plan %q: want cascade(FIRST>=GATE:SECOND), e.g. cascade(77aa0b12>=0.3:3f2a9c1e)", s)
		}
		return topics.Plan{Cascade: &topics.Cascade{First: strings.TrimSpace(first), Second: strings.TrimSpace(second), Gate: g}}, nil
	}
	return topics.Plan{}, fmt.Errorf("plan %q: %q is not mean, max, weighted or cascade", s, kind)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
