package evaluate

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// synthetic returns n predictions split between the arms, the treatment scoring frauds
// higher by lift, and about half of them labelled.
func synthetic(n int, lift float64, seed uint64) []Row {
	rng := rand.New(rand.NewPCG(seed, 24))
	t0 := time.Date(2018, 8, 8, 0, 0, 0, 0, time.UTC)
	rows := make([]Row, n)
	for i := range rows {
		fraud := rng.Float64() < 0.1
		arm, v := Control, "c0ffee01"
		if i%5 == 0 {
			arm, v = Treatment, "7ea7e502"
		}
		s := rng.Float64() * 0.6
		if fraud {
			s += 0.3
			if arm == Treatment {
				s += lift
			}
		}
		rows[i] = Row{ID: fmt.Sprint(i), Arm: arm, Version: v, Score: float64(float32(min(s, 1))),
			EventTime: t0.Add(time.Duration(i) * time.Minute), Card: fmt.Sprint(rng.IntN(50)),
			Labelled: rng.Float64() < 0.5, Fraud: fraud}
	}
	return rows
}

// encode writes rows as the predictions and labels topics would hold them.
func encode(name string, rows []Row) (preds, labels [][]byte) {
	for i, r := range rows {
		preds = append(preds, fmt.Appendf(nil, `{"source":{"topic":"transactions","partition":0,"offset":%d},"key":%q,"id":%s,"score":%v,"model":{"name":"fraud","version":%q},"experiment":{"name":%q,"arm":%q},"event_time":%q}`,
			i, r.Card, r.ID, float32(r.Score), r.Version, name, r.Arm, r.EventTime.Format(time.RFC3339)))
		if r.Labelled {
			y := 0
			if r.Fraud {
				y = 1
			}
			labels = append(labels, fmt.Appendf(nil, `{"transaction_id":%s,"tx_fraud":%d}`, r.ID, y))
		}
	}
	return preds, labels
}

func TestReportAgreesWithCheck(t *testing.T) {
	rows := synthetic(4000, 0.2, 1)
	rep := Build("exp", rows, Options{Threshold: 0.5})
	preds, labels := encode("exp", rows)
	in := CheckInput{Experiment: "exp", Predictions: preds, Labels: labels, IDField: "transaction_id", LabelField: "tx_fraud", Threshold: 0.5}
	if err := Check(rep, in); err != nil {
		t.Fatal(err)
	}
	c, tr := rep.Arm(Control), rep.Arm(Treatment)
	if c == nil || tr == nil || c.Events+tr.Events != 4000 || tr.Events != 800 {
		t.Fatalf("arms: %+v", rep.Arms)
	}
	if c.TP+c.FP+c.FN+c.TN != c.Labelled || c.Version != "c0ffee01" {
		t.Errorf("control: %+v", *c)
	}
	// The treatment's lift puts every labelled fraud above the threshold: recall 1 against
	// about 0.5, which the interval resolves at these sizes.
	if rep.Verdict != Better {
		t.Errorf("verdict %q (%s), want %q", rep.Verdict, rep.Reason, Better)
	}
	if *rep.RecallDiff.Value <= 0 || rep.RecallDiff.CI.Lo <= 0 {
		t.Errorf("recall difference %v %+v", *rep.RecallDiff.Value, *rep.RecallDiff.CI)
	}
	// The check can fail: a report off by one true positive, or by a rate, is caught.
	tr.TP++
	if err := Check(rep, in); err == nil || !strings.Contains(err.Error(), "tp") {
		t.Errorf("a wrong tp should fail the check: %v", err)
	}
	tr.TP--
	*tr.AUC += 1e-6
	if err := Check(rep, in); err == nil || !strings.Contains(err.Error(), "auc") {
		t.Errorf("a wrong AUC should fail the check: %v", err)
	}
}

func TestVerdicts(t *testing.T) {
	worse := synthetic(4000, 0.2, 2)
	for i := range worse { // swap the arms: the control now has the lift
		if worse[i].Arm == Treatment {
			worse[i].Arm = Control
		} else {
			worse[i].Arm = Treatment
		}
	}
	if rep := Build("exp", worse, Options{Threshold: 0.5}); rep.Verdict != Worse {
		t.Errorf("swapped arms: verdict %q (%s), want %q", rep.Verdict, rep.Reason, Worse)
	}
	same := synthetic(400, 0, 3)
	if rep := Build("exp", same, Options{Threshold: 0.5}); rep.Verdict != Unknown || !strings.Contains(rep.Reason, "contain 0") {
		t.Errorf("equal arms: verdict %q (%s), want %q", rep.Verdict, rep.Reason, Unknown)
	}
}

func TestReportWithoutLabelsOrOneArm(t *testing.T) {
	rows := synthetic(100, 0.2, 4)
	for i := range rows {
		rows[i].Labelled = false
	}
	rep := Build("exp", rows, Options{Threshold: 0.5})
	c := rep.Arm(Control)
	if c.Labelled != 0 || c.Precision != nil || c.Recall != nil || c.AUC != nil || c.AP != nil || c.CardPrecision != nil || c.Alerts == 0 {
		t.Errorf("no labels: %+v", *c)
	}
	if rep.Verdict != Unknown || rep.PrecisionDiff.Value != nil {
		t.Errorf("no labels: verdict %q, difference %+v", rep.Verdict, rep.PrecisionDiff)
	}
	var b strings.Builder
	if err := Print(&b, rep); err != nil || !strings.Contains(b.String(), "n/a") || !strings.Contains(b.String(), "not yet known") {
		t.Errorf("printed %q (%v)", b.String(), err)
	}
	oneArm := Build("exp", synthetic(100, 0, 5)[1:5], Options{Threshold: 0.5})
	if len(oneArm.Arms) != 1 || oneArm.Verdict != Unknown || !strings.Contains(oneArm.Reason, "both arms") {
		t.Errorf("one arm: %+v", oneArm)
	}
}
