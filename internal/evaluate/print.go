package evaluate

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Print writes rep as `streamscore experiment report` prints it: a row per arm, the
// differences and the verdict.
func Print(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "experiment %s: alerts at score >= %g; intervals are 95%% (Wilson; Newcombe for differences); card precision@%d by UTC day\n",
		rep.Experiment, rep.Threshold, rep.K)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "arm\tversion\tevents\tlabelled\talerts\ttp\tfp\tfn\ttn\tprecision\trecall\tAUC\tAP\tcard P@%d\n", rep.K)
	for _, a := range rep.Arms {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", a.Arm, a.Version, a.Events, a.Labelled, a.Alerts,
			a.TP, a.FP, a.FN, a.TN, withCI(a.Precision, a.PrecisionCI), withCI(a.Recall, a.RecallCI), num(a.AUC), num(a.AP), num(a.CardPrecision))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "treatment − control: precision %s, recall %s\n", signedCI(rep.PrecisionDiff), signedCI(rep.RecallDiff))
	if rep.WithoutID > 0 || rep.Duplicates > 0 {
		fmt.Fprintf(w, "left out of the join: %d predictions without an event id, %d duplicate predictions\n", rep.WithoutID, rep.Duplicates)
	}
	_, err := fmt.Fprintf(w, "verdict: %s (%s)\n", rep.Verdict, rep.Reason)
	return err
}

func num(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", *v)
}

func withCI(v *float64, ci *Interval) string {
	if v == nil || ci == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.4f [%.4f, %.4f]", *v, ci.Lo, ci.Hi)
}

func signedCI(d Difference) string {
	if d.Value == nil || d.CI == nil {
		return "n/a"
	}
	return fmt.Sprintf("%+.4f [%+.4f, %+.4f]", *d.Value, d.CI.Lo, d.CI.Hi)
}
