package bench

import (
	"math"
	"strings"
	"testing"
)

const stagesBefore = `# HELP streamscore_stage_seconds Time.
# TYPE streamscore_stage_seconds histogram
streamscore_stage_seconds_bucket{stage="queue",le="0.001"} 10
streamscore_stage_seconds_bucket{stage="queue",le="0.002"} 10
streamscore_stage_seconds_bucket{stage="queue",le="+Inf"} 10
streamscore_stage_seconds_sum{stage="queue"} 0.005
streamscore_stage_seconds_count{stage="queue"} 10
streamscore_records_in_total{topic="x"} 3
`

const stagesAfter = `streamscore_stage_seconds_bucket{stage="queue",le="0.001"} 60
streamscore_stage_seconds_bucket{stage="queue",le="0.002"} 110
streamscore_stage_seconds_bucket{stage="queue",le="+Inf"} 110
streamscore_stage_seconds_sum{stage="queue"} 0.155
streamscore_stage_seconds_count{stage="queue"} 110
streamscore_stage_seconds_bucket{stage="ack",le="0.001"} 0
streamscore_stage_seconds_bucket{stage="ack",le="+Inf"} 0
streamscore_stage_seconds_count{stage="ack"} 0
`

func TestStagesBetweenScrapes(t *testing.T) {
	before, err := parseStages(strings.NewReader(stagesBefore))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseStages(strings.NewReader(stagesAfter))
	if err != nil {
		t.Fatal(err)
	}
	got := stagesBetween(before, after)
	if len(got) != 1 || got[0].Stage != "queue" {
		t.Fatalf("stages %+v, want queue only (ack observed nothing)", got)
	}
	q := got[0]
	// 100 observations between the scrapes: 50 in (0, 1ms], 50 in (1ms, 2ms], sum 150ms.
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if q.Count != 100 || !near(q.MeanMs, 1.5) || !near(q.P50Ms, 1) || !near(q.P99Ms, 1.98) {
		t.Fatalf("queue %+v, want 100 records, mean 1.5 ms, p50 1 ms, p99 1.98 ms", q)
	}
}
