package evaluate

import (
	"math"
	"sort"
)

// z95 is the standard normal quantile of 0.975: the half-width factor of a two-sided 95%
// interval.
const z95 = 1.959963984540054

// Interval is a two-sided 95% confidence interval.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Wilson returns the proportion x/n and its Wilson score 95% interval (Wilson 1927;
// Newcombe 1998, method 3). ok is false when n is 0: the proportion is undefined.
func Wilson(x, n int64) (p float64, ci Interval, ok bool) {
	if n <= 0 {
		return 0, Interval{}, false
	}
	nf := float64(n)
	p = float64(x) / nf
	z2 := z95 * z95
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := z95 / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return p, Interval{Lo: math.Max(0, center-half), Hi: math.Min(1, center+half)}, true
}

// Newcombe returns the difference x1/n1 − x2/n2 and its 95% interval by Newcombe's hybrid
// score method (Newcombe 1998, method 10), built from the two Wilson intervals. ok is false
// when either proportion is undefined.
func Newcombe(x1, n1, x2, n2 int64) (d float64, ci Interval, ok bool) {
	p1, c1, ok1 := Wilson(x1, n1)
	p2, c2, ok2 := Wilson(x2, n2)
	if !ok1 || !ok2 {
		return 0, Interval{}, false
	}
	d = p1 - p2
	lo := d - math.Sqrt((p1-c1.Lo)*(p1-c1.Lo)+(c2.Hi-p2)*(c2.Hi-p2))
	hi := d + math.Sqrt((c1.Hi-p1)*(c1.Hi-p1)+(p2-c2.Lo)*(p2-c2.Lo))
	return d, Interval{Lo: lo, Hi: hi}, true
}

// Scored is one labelled score.
type Scored struct {
	Score float64
	Fraud bool
}

// byScoreDesc sorts rows by score, highest first; the order within equal scores does not
// matter to AUC and AP, which treat tied scores as one threshold.
func byScoreDesc(rows []Scored) []Scored {
	s := append([]Scored(nil), rows...)
	sort.Slice(s, func(i, j int) bool { return s[i].Score > s[j].Score })
	return s
}

// AUC is the area under the ROC curve as the Mann-Whitney statistic: the probability that
// a random fraud scores above a random non-fraud, a tie counting one half (what
// scikit-learn's roc_auc_score computes). ok is false unless both classes are present.
func AUC(rows []Scored) (auc float64, ok bool) {
	s := byScoreDesc(rows)
	var pos, neg int64
	var wins float64 // pairs (fraud, non-fraud) where the fraud ranks above, ties half
	for i := 0; i < len(s); {
		j := i
		var gp, gn int64
		for ; j < len(s) && s[j].Score == s[i].Score; j++ {
			if s[j].Fraud {
				gp++
			} else {
				gn++
			}
		}
		// Non-frauds in this group lose to every fraud above them and tie with the group's.
		wins += float64(gn)*float64(pos) + 0.5*float64(gn)*float64(gp)
		pos += gp
		neg += gn
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0, false
	}
	return wins / (float64(pos) * float64(neg)), true
}

// AveragePrecision is scikit-learn's average_precision_score: Σ (Rₙ − Rₙ₋₁) Pₙ over the
// distinct score thresholds, highest first, without interpolation. ok is false when there
// is no fraud (the recall is undefined).
func AveragePrecision(rows []Scored) (ap float64, ok bool) {
	s := byScoreDesc(rows)
	var total int64
	for _, r := range s {
		if r.Fraud {
			total++
		}
	}
	if total == 0 {
		return 0, false
	}
	var tp, fp int64
	prevRecall := 0.0
	for i := 0; i < len(s); {
		j := i
		for ; j < len(s) && s[j].Score == s[i].Score; j++ {
			if s[j].Fraud {
				tp++
			} else {
				fp++
			}
		}
		recall := float64(tp) / float64(total)
		ap += (recall - prevRecall) * float64(tp) / float64(tp+fp)
		prevRecall = recall
		i = j
	}
	return ap, true
}
