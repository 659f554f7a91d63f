package evaluate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// CheckInput is what Check reads: the raw values of the predictions topic and of the
// labels topic, as a test read them, and the settings the report ran with.
type CheckInput struct {
	Experiment  string
	Predictions [][]byte // values of the predictions topic, in any order
	Labels      [][]byte // values of the labels topic, in topic order (a later label wins)
	IDField     string   // the labels' id field (transaction_id)
	LabelField  string   // the labels' 0/1 field (tx_fraud)
	Threshold   float64
}

// Check joins the topics itself — generic JSON decoding, no code shared with the report's
// path — and returns an error naming every figure of rep that differs: the counts must be
// equal and precision, recall and AUC (computed here by counting pairs) agree to 1e-9.
// It is the acceptance check of an experiment run (docs/experiments.md); nil means agree.
func Check(rep *Report, in CheckInput) error {
	labels, err := checkLabels(in)
	if err != nil {
		return err
	}
	type source struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
	}
	seen := map[source]bool{}
	arms := map[string]*checkArm{}
	for _, v := range in.Predictions {
		var p struct {
			Source     source          `json:"source"`
			ID         json.RawMessage `json:"id"`
			Score      float64         `json:"score"`
			Experiment *struct {
				Name string `json:"name"`
				Arm  string `json:"arm"`
			} `json:"experiment"`
		}
		if json.Unmarshal(v, &p) != nil || p.Experiment == nil || p.Experiment.Name != in.Experiment || seen[p.Source] {
			continue
		}
		seen[p.Source] = true
		a := arms[p.Experiment.Arm]
		if a == nil {
			a = &checkArm{}
			arms[p.Experiment.Arm] = a
		}
		fraud, labelled := labels[string(bytes.Trim(p.ID, `"`))]
		a.add(p.Score, in.Threshold, labelled, fraud)
	}
	var errs []error
	if len(arms) != len(rep.Arms) {
		errs = append(errs, fmt.Errorf("the topics have %d arms, the report %d", len(arms), len(rep.Arms)))
	}
	for name, a := range arms {
		ar := rep.Arm(name)
		if ar == nil {
			errs = append(errs, fmt.Errorf("arm %q is missing from the report", name))
			continue
		}
		errs = append(errs, a.compare(ar)...)
	}
	return errors.Join(errs...)
}

func checkLabels(in CheckInput) (map[string]bool, error) {
	out := map[string]bool{}
	for _, v := range in.Labels {
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) != nil {
			continue
		}
		id, ok1 := m[in.IDField].(json.Number)
		y, ok2 := m[in.LabelField].(json.Number)
		if !ok1 || !ok2 {
			continue
		}
		f, err := y.Float64()
		if err != nil {
			return nil, fmt.Errorf("label %s: %w", id, err)
		}
		out[id.String()] = f == 1
	}
	return out, nil
}

type checkArm struct {
	events, labelled, alerts, tp, fp, fn, tn int64
	pos, neg                                 []float64
}

func (a *checkArm) add(score, threshold float64, labelled, fraud bool) {
	a.events++
	alert := score >= threshold
	if alert {
		a.alerts++
	}
	if !labelled {
		return
	}
	a.labelled++
	if fraud {
		a.pos = append(a.pos, score)
		if alert {
			a.tp++
		} else {
			a.fn++
		}
		return
	}
	a.neg = append(a.neg, score)
	if alert {
		a.fp++
	} else {
		a.tn++
	}
}

// auc counts the pairs: a fraud above a non-fraud wins, a tie counts half.
func (a *checkArm) auc() (float64, bool) {
	if len(a.pos) == 0 || len(a.neg) == 0 {
		return 0, false
	}
	wins := 0.0
	for _, p := range a.pos {
		for _, n := range a.neg {
			switch {
			case p > n:
				wins++
			case p == n:
				wins += 0.5
			}
		}
	}
	return wins / float64(len(a.pos)*len(a.neg)), true
}

func (a *checkArm) compare(ar *ArmReport) []error {
	var errs []error
	for _, c := range []struct {
		name       string
		want, have int64
	}{
		{"events", a.events, ar.Events}, {"labelled", a.labelled, ar.Labelled}, {"alerts", a.alerts, ar.Alerts},
		{"tp", a.tp, ar.TP}, {"fp", a.fp, ar.FP}, {"fn", a.fn, ar.FN}, {"tn", a.tn, ar.TN},
	} {
		if c.want != c.have {
			errs = append(errs, fmt.Errorf("arm %s: %s: the topics say %d, the report %d", ar.Arm, c.name, c.want, c.have))
		}
	}
	prec, pok := ratio(a.tp, a.tp+a.fp)
	rec, rok := ratio(a.tp, a.tp+a.fn)
	auc, aok := a.auc()
	for _, c := range []struct {
		name string
		want float64
		ok   bool
		have *float64
	}{
		{"precision", prec, pok, ar.Precision}, {"recall", rec, rok, ar.Recall}, {"auc", auc, aok, ar.AUC},
	} {
		switch {
		case c.ok != (c.have != nil):
			errs = append(errs, fmt.Errorf("arm %s: %s: defined in the topics %v, in the report %v", ar.Arm, c.name, c.ok, c.have != nil))
		case c.ok && math.Abs(c.want-*c.have) > 1e-9:
			errs = append(errs, fmt.Errorf("arm %s: %s: the topics say %.12g, the report %.12g", ar.Arm, c.name, c.want, *c.have))
		}
	}
	return errs
}

func ratio(x, n int64) (float64, bool) {
	if n == 0 {
		return 0, false
	}
	return float64(x) / float64(n), true
}
