package evaluate

import "fmt"

// compare fills the differences and the verdict. The rule (docs/experiments.md): the
// treatment is better when one of precision and recall is significantly higher (its
// difference's 95% interval lies above 0) and the other is not significantly lower; worse
// in the mirror case; otherwise — an interval across 0, a trade-off of one rate for the
// other, or a rate not yet defined — not yet known.
func (r *Report) compare() {
	r.Verdict = Unknown
	c, t := r.Arm(Control), r.Arm(Treatment)
	if c == nil || t == nil {
		r.Reason = "the experiment needs predictions in both arms"
		return
	}
	var pok, rok bool
	r.PrecisionDiff, pok = diff(t.TP, t.TP+t.FP, c.TP, c.TP+c.FP)
	r.RecallDiff, rok = diff(t.TP, t.TP+t.FN, c.TP, c.TP+c.FN)
	if !pok || !rok {
		r.Reason = "precision or recall is not yet defined in an arm (no labelled alert or no labelled fraud)"
		return
	}
	pd, rd := *r.PrecisionDiff.CI, *r.RecallDiff.CI
	switch {
	case (pd.Lo > 0 && rd.Hi >= 0) || (rd.Lo > 0 && pd.Hi >= 0):
		r.Verdict = Better
		r.Reason = "a rate is significantly higher and neither is significantly lower"
	case (pd.Hi < 0 && rd.Lo <= 0) || (rd.Hi < 0 && pd.Lo <= 0):
		r.Verdict = Worse
		r.Reason = "a rate is significantly lower and neither is significantly higher"
	case (pd.Lo > 0 && rd.Hi < 0) || (rd.Lo > 0 && pd.Hi < 0):
		r.Reason = "a trade-off: one rate is significantly higher, the other significantly lower"
	default:
		r.Reason = fmt.Sprintf("both differences' intervals contain 0 (precision [%.4f, %.4f], recall [%.4f, %.4f])", pd.Lo, pd.Hi, rd.Lo, rd.Hi)
	}
}

func diff(x1, n1, x2, n2 int64) (Difference, bool) {
	d, ci, ok := Newcombe(x1, n1, x2, n2)
	if !ok {
		return Difference{}, false
	}
	return Difference{Value: &d, CI: &ci}, true
}
