package bench

import (
	"math"
	"strings"
	"testing"
)

// noisyRuns is five rounds at one load: the pipeline 2 ms (p50) and 10 ms (p99) above a
// floor that varies, except in round 3, where the machine stalled the pipeline's run.
func noisyRuns() []LatencyRun {
	var runs []LatencyRun
	for k, floor := range []float64{3, 5, 4, 6, 2} {
		over50, over99 := 2.0, 10.0
		if k == 3 {
			over50, over99 = 40, 400
		}
		stage := func(p99 float64) []StagePoint {
			return []StagePoint{{Stage: "queue", Count: 100, MeanMs: 1, P50Ms: 1, P99Ms: p99}}
		}
		runs = append(runs, LatencyRun{
			Floor: LatencyPoint{Offered: 1000, Events: 100, P50Ms: floor, P99Ms: 2 * floor},
			Idle: LatencyPoint{Offered: 1000, Events: 100, P50Ms: floor + over50, P99Ms: 2*floor + over99,
				Stages: stage(over99)},
			Flowing: LatencyPoint{Offered: 1000, Events: 100, P50Ms: floor + over50 + 1, P99Ms: 2*floor + over99 + 1},
		})
	}
	return runs
}

// TestOneNoisyRunDecidesNothing: the median difference to the floor ignores the stalled
// round, which shows in the spread instead.
func TestOneNoisyRunDecidesNothing(t *testing.T) {
	s := summarizeStep(1000, noisyRuns())
	if s.IdleOver.P50.Median != 2 || s.IdleOver.P99.Median != 10 {
		t.Errorf("median over the floor: p50 %v, p99 %v; want 2 and 10", s.IdleOver.P50.Median, s.IdleOver.P99.Median)
	}
	if s.IdleOver.P99.Max != 400 || s.IdleOver.P99.Min != 10 {
		t.Errorf("p99 spread %+v: want the stalled run as its max", s.IdleOver.P99)
	}
	if s.FlowingOver.P50.Median != 3 {
		t.Errorf("labels flowing, p50 over the floor: %v, want 3", s.FlowingOver.P50.Median)
	}
	if s.Floor.P50Ms != 4 || s.Idle.Events != 500 {
		t.Errorf("median floor p50 %v (want 4), events %d (want the 500 of the runs)", s.Floor.P50Ms, s.Idle.Events)
	}
	if len(s.Idle.Stages) != 1 || s.Idle.Stages[0].P99Ms != 10 || s.Idle.Stages[0].Count != 500 {
		t.Errorf("stages: %+v; want queue with the median p99 10 of 5 runs", s.Idle.Stages)
	}
	if len(s.Flowing.Stages) != 0 {
		t.Errorf("stages no run observed: %+v", s.Flowing.Stages)
	}
}

func TestSpreadOf(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want Spread
	}{
		{[]float64{7}, Spread{7, 7, 7, 7, 7}},
		{[]float64{4, 1, 3, 2}, Spread{Median: 2.5, Min: 1, Max: 4, Q1: 1.75, Q3: 3.25}},
		{[]float64{5, -1, 3, 100, 2}, Spread{Median: 3, Min: -1, Max: 100, Q1: 2, Q3: 5}},
	} {
		got := spreadOf(c.xs)
		if math.Abs(got.Median-c.want.Median)+math.Abs(got.Q1-c.want.Q1)+math.Abs(got.Q3-c.want.Q3) > 1e-12 ||
			got.Min != c.want.Min || got.Max != c.want.Max {
			t.Errorf("spreadOf(%v) = %+v, want %+v", c.xs, got, c.want)
		}
	}
}

func TestPrintSteps(t *testing.T) {
	r := &Results{Machine: "m", LatencySteps: []LatencyStep{summarizeStep(1000, noisyRuns())}}
	var b strings.Builder
	if err := Print(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"(d) offered 1000 events/s, 5 runs, streamscore - Kafka floor, median [min..max] (IQR)",
		"labels idle: p50 +2.00 ms [+2.00..+40.00] (IQR +2.00..+2.00), p99 +10.00 ms [+10.00..+400.00]",
		"stage queue", "p99 10.000 ms",
		"Kafka floor (relay, no decoding, no model), medians",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
