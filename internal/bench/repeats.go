package bench

import (
	"slices"
)

// LatencyRun is one round of an offered load of stage d: the Kafka floor and streamscore
// with the labels topic idle and flowing, run one after the other.
type LatencyRun struct {
	Floor   LatencyPoint `json:"floor"`
	Idle    LatencyPoint `json:"labels_idle"`
	Flowing LatencyPoint `json:"labels_flowing"`
}

// LatencyStep is an offered load of stage d over its rounds. Idle, Flowing and Floor are
// the medians over the rounds of each of their figures; IdleOver and FlowingOver are the
// differences to the floor of the same round, summarized over the rounds.
type LatencyStep struct {
	Offered     float64      `json:"offered_events_per_s"`
	Runs        []LatencyRun `json:"runs"`
	Idle        LatencyPoint `json:"labels_idle_median"`
	Flowing     LatencyPoint `json:"labels_flowing_median"`
	Floor       LatencyPoint `json:"floor_median"`
	IdleOver    OverFloor    `json:"labels_idle_over_floor"`
	FlowingOver OverFloor    `json:"labels_flowing_over_floor"`
}

// OverFloor is streamscore's latency minus the floor's, in ms, over the rounds of a load.
type OverFloor struct {
	P50 Spread `json:"p50_ms"`
	P99 Spread `json:"p99_ms"`
}

// Spread is the median of some figures with their range and interquartile range.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Q1     float64 `json:"q1"`
	Q3     float64 `json:"q3"`
}

// spreadOf summarizes xs (at least one); its quartiles interpolate between order
// statistics, so that the median of an even count is the mean of the middle two.
func spreadOf(xs []float64) Spread {
	s := slices.Clone(xs)
	slices.Sort(s)
	return Spread{Median: quantileOf(s, 0.5), Min: s[0], Max: s[len(s)-1], Q1: quantileOf(s, 0.25), Q3: quantileOf(s, 0.75)}
}

// quantileOf is the q-quantile of sorted by linear interpolation between its order
// statistics (R's type 7).
func quantileOf(sorted []float64, q float64) float64 {
	h := q * float64(len(sorted)-1)
	i := int(h)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}

func medianOf(xs []float64) float64 { return spreadOf(xs).Median }

// summarizeStep is the LatencyStep of the rounds runs (at least one) at offered.
func summarizeStep(offered float64, runs []LatencyRun) LatencyStep {
	pick := func(f func(LatencyRun) LatencyPoint) []LatencyPoint {
		out := make([]LatencyPoint, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	floor := pick(func(r LatencyRun) LatencyPoint { return r.Floor })
	idle := pick(func(r LatencyRun) LatencyPoint { return r.Idle })
	flowing := pick(func(r LatencyRun) LatencyPoint { return r.Flowing })
	return LatencyStep{
		Offered: offered, Runs: runs,
		Idle: medianPoint(idle), Flowing: medianPoint(flowing), Floor: medianPoint(floor),
		IdleOver: overFloorOf(idle, floor), FlowingOver: overFloorOf(flowing, floor),
	}
}

// overFloorOf is the spread over the rounds of each round's pipeline minus its floor.
func overFloorOf(pipeline, floor []LatencyPoint) OverFloor {
	p50, p99 := make([]float64, len(floor)), make([]float64, len(floor))
	for i := range floor {
		p50[i] = pipeline[i].P50Ms - floor[i].P50Ms
		p99[i] = pipeline[i].P99Ms - floor[i].P99Ms
	}
	return OverFloor{P50: spreadOf(p50), P99: spreadOf(p99)}
}

// medianPoint is a LatencyPoint whose every figure is the median of ps's; its events are
// the sum, and its stages the medians of each stage's figures over the rounds.
func medianPoint(ps []LatencyPoint) LatencyPoint {
	col := func(f func(LatencyPoint) float64) float64 {
		xs := make([]float64, len(ps))
		for i, p := range ps {
			xs[i] = f(p)
		}
		return medianOf(xs)
	}
	m := LatencyPoint{
		Offered:  ps[0].Offered,
		Achieved: col(func(p LatencyPoint) float64 { return p.Achieved }),
		P50Ms:    col(func(p LatencyPoint) float64 { return p.P50Ms }),
		P99Ms:    col(func(p LatencyPoint) float64 { return p.P99Ms }),
		P999Ms:   col(func(p LatencyPoint) float64 { return p.P999Ms }),
		PeakRSS:  col(func(p LatencyPoint) float64 { return p.PeakRSS }),
	}
	for _, p := range ps {
		m.Events += p.Events
	}
	m.Stages = medianStages(ps)
	return m
}

// medianStages is, for each stage that every round observed, the median over the rounds
// of its mean, p50 and p99, and the sum of its observations.
func medianStages(ps []LatencyPoint) []StagePoint {
	var out []StagePoint
	for _, name := range stageOrder {
		var mean, p50, p99 []float64
		var n uint64
		for _, p := range ps {
			for _, s := range p.Stages {
				if s.Stage == name {
					mean, p50, p99 = append(mean, s.MeanMs), append(p50, s.P50Ms), append(p99, s.P99Ms)
					n += s.Count
				}
			}
		}
		if len(p99) < len(ps) { // a stage some round did not observe has no median
			continue
		}
		out = append(out, StagePoint{Stage: name, Count: n, MeanMs: medianOf(mean), P50Ms: medianOf(p50), P99Ms: medianOf(p99)})
	}
	return out
}
