package evaluate

import (
	"sort"
	"strings"
	"time"
)

// Arm names of an experiment's two arms, as predictions carry them.
const (
	Control   = "control"
	Treatment = "treatment"
)

// Verdicts of a comparison.
const (
	Better  = "better"
	Worse   = "worse"
	Unknown = "not yet known"
)

// Row is one prediction of an experiment, joined with its label when one is known.
type Row struct {
	ID        string
	Arm       string
	Version   string
	Score     float64
	EventTime time.Time
	Card      string // the record key: the card (customer) for card precision
	Labelled  bool
	Fraud     bool // meaningful when Labelled
}

// Options tune Build.
type Options struct {
	Threshold float64 // a prediction with score >= Threshold is an alert
	K         int     // cards per day for card precision@k; 0: 100
}

// ArmReport is one arm's figures. Rates are nil (null in JSON) when undefined: no labelled
// event, no predicted or actual fraud, a single class.
type ArmReport struct {
	Arm      string   `json:"arm"`
	Version  string   `json:"version"`  // the versions that scored the arm, comma-separated
	Versions []string `json:"versions"` // the same, as a list
	Events   int64    `json:"events"`
	Labelled int64    `json:"labelled"`
	Alerts   int64    `json:"alerts"`
	TP       int64    `json:"tp"`
	FP       int64    `json:"fp"`
	FN       int64    `json:"fn"`
	TN       int64    `json:"tn"`
	// Precision is tp/(tp+fp), Recall tp/(tp+fn), each with its Wilson 95% interval.
	Precision   *float64  `json:"precision"`
	PrecisionCI *Interval `json:"precision_ci"`
	Recall      *float64  `json:"recall"`
	RecallCI    *Interval `json:"recall_ci"`
	AUC         *float64  `json:"auc"`
	AP          *float64  `json:"average_precision"`
	// CardPrecision is the daily card precision@k over the labelled events (days: UTC
	// dates of the event times).
	CardPrecision *float64 `json:"card_precision_at_k"`
	Days          int      `json:"days"`
}

// Difference is treatment − control of one rate, with Newcombe's 95% interval.
type Difference struct {
	Value *float64  `json:"value"`
	CI    *Interval `json:"ci"`
}

// Report is an experiment's evaluation.
type Report struct {
	Experiment string      `json:"experiment"`
	Threshold  float64     `json:"threshold"`
	K          int         `json:"k"`
	Arms       []ArmReport `json:"arms"`
	// PrecisionDiff and RecallDiff are treatment − control.
	PrecisionDiff Difference `json:"precision_difference"`
	RecallDiff    Difference `json:"recall_difference"`
	Verdict       string     `json:"verdict"`
	Reason        string     `json:"verdict_reason"`
	// WithoutID counts the experiment's predictions that carry no event id: they count as
	// events and alerts but can never be labelled. Duplicates counts predictions of an
	// input record already seen (redelivery), which are left out.
	WithoutID  int64 `json:"without_id"`
	Duplicates int64 `json:"duplicates"`
}

// Build computes the report of rows.
func Build(name string, rows []Row, o Options) *Report {
	if o.K <= 0 {
		o.K = 100
	}
	byArm := map[string][]Row{}
	for _, r := range rows {
		byArm[r.Arm] = append(byArm[r.Arm], r)
	}
	names := make([]string, 0, len(byArm))
	for a := range byArm {
		names = append(names, a)
	}
	sort.Slice(names, func(i, j int) bool {
		return armOrder(names[i]) < armOrder(names[j]) || armOrder(names[i]) == armOrder(names[j]) && names[i] < names[j]
	})
	rep := &Report{Experiment: name, Threshold: o.Threshold, K: o.K}
	for _, a := range names {
		rep.Arms = append(rep.Arms, buildArm(a, byArm[a], o))
	}
	rep.compare()
	return rep
}

func armOrder(a string) int {
	switch a {
	case Control:
		return 0
	case Treatment:
		return 1
	}
	return 2
}

func buildArm(arm string, rows []Row, o Options) ArmReport {
	ar := ArmReport{Arm: arm, Events: int64(len(rows))}
	versions := map[string]bool{}
	var scored []Scored
	var cards []CardRow
	for _, r := range rows {
		versions[r.Version] = true
		alert := r.Score >= o.Threshold
		if alert {
			ar.Alerts++
		}
		if !r.Labelled {
			continue
		}
		ar.Labelled++
		switch {
		case alert && r.Fraud:
			ar.TP++
		case alert:
			ar.FP++
		case r.Fraud:
			ar.FN++
		default:
			ar.TN++
		}
		scored = append(scored, Scored{Score: r.Score, Fraud: r.Fraud})
		cards = append(cards, CardRow{Day: unixDay(r.EventTime), Card: r.Card, Score: r.Score, Fraud: r.Fraud})
	}
	for v := range versions {
		ar.Versions = append(ar.Versions, v)
	}
	sort.Strings(ar.Versions)
	ar.Version = strings.Join(ar.Versions, ",")
	ar.Precision, ar.PrecisionCI = rate(Wilson(ar.TP, ar.TP+ar.FP))
	ar.Recall, ar.RecallCI = rate(Wilson(ar.TP, ar.TP+ar.FN))
	ar.AUC = opt(AUC(scored))
	ar.AP = opt(AveragePrecision(scored))
	ar.CardPrecision = opt(CardPrecisionAtK(cards, o.K))
	days := map[int64]bool{}
	for _, c := range cards {
		days[c.Day] = true
	}
	ar.Days = len(days)
	return ar
}

// unixDay numbers the UTC date of t (train.py's days start at midnight UTC too).
func unixDay(t time.Time) int64 {
	s := t.Unix()
	if s < 0 && s%86400 != 0 {
		return s/86400 - 1
	}
	return s / 86400
}

func rate(p float64, ci Interval, ok bool) (*float64, *Interval) {
	if !ok {
		return nil, nil
	}
	return &p, &ci
}

func opt(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return &v
}

// Arm returns the report of arm, or nil.
func (r *Report) Arm(arm string) *ArmReport {
	for i := range r.Arms {
		if r.Arms[i].Arm == arm {
			return &r.Arms[i]
		}
	}
	return nil
}
