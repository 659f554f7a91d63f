package evaluate

import "sort"

// CardRow is one labelled transaction for card precision: its day (any integer that
// numbers days in order, e.g. Unix days of the event time), its card, score and label.
type CardRow struct {
	Day   int64
	Card  string
	Score float64
	Fraud bool
}

// CardPrecisionAtK is the Fraud Detection Handbook's daily card precision@k, as
// testdata/model/train.py computes it (card_precision_top_k): on each day, in order, every
// card not yet detected gets its day's highest score and is a fraud if any of its
// transactions that day is; the k cards with the highest scores (ties by card, ascending)
// are the day's alerts and their share of frauds — over k, even when fewer cards were seen
// — is the day's precision; the frauds found are detected and left out on later days. The
// result is the mean over the days present. ok is false without rows.
func CardPrecisionAtK(rows []CardRow, k int) (prec float64, ok bool) {
	if len(rows) == 0 || k <= 0 {
		return 0, false
	}
	byDay := map[int64][]CardRow{}
	var days []int64
	for _, r := range rows {
		if _, seen := byDay[r.Day]; !seen {
			days = append(days, r.Day)
		}
		byDay[r.Day] = append(byDay[r.Day], r)
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	detected := map[string]bool{}
	type best struct {
		card  string
		score float64
		fraud bool
	}
	sum := 0.0
	for _, d := range days {
		cards := map[string]*best{}
		for _, r := range byDay[d] {
			if detected[r.Card] {
				continue
			}
			b := cards[r.Card]
			if b == nil {
				cards[r.Card] = &best{card: r.Card, score: r.Score, fraud: r.Fraud}
				continue
			}
			b.score = max(b.score, r.Score)
			b.fraud = b.fraud || r.Fraud
		}
		ranked := make([]*best, 0, len(cards))
		for _, b := range cards {
			ranked = append(ranked, b)
		}
		sort.Slice(ranked, func(i, j int) bool {
			if ranked[i].score != ranked[j].score {
				return ranked[i].score > ranked[j].score
			}
			return ranked[i].card < ranked[j].card
		})
		hits := 0
		for _, b := range ranked[:min(k, len(ranked))] {
			if b.fraud {
				hits++
				detected[b.card] = true
			}
		}
		sum += float64(hits) / float64(k)
	}
	return sum / float64(len(days)), true
}
