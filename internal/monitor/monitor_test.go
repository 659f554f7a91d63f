package monitor

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/pipeline/drift"
)

// TestMergeSumsPartitions: two partitions' records of one window merge into one row
// whose counts are their sum, judged against the reference.
func TestMergeSumsPartitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rows := make([][]float32, 5000)
	scores := make([]float32, len(rows))
	for i := range rows {
		rows[i] = []float32{float32(rng.Float64() * 100)}
		scores[i] = float32(rng.Float64())
	}
	ref, err := drift.Build("m", []string{"x"}, rows, scores, 10)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
	var recs []*drift.Record
	for p := int32(0); p < 2; p++ {
		c := drift.NewCounts(ref)
		for range 1000 {
			c.Add([]float32{float32(rng.Float64() * 100)}, float32(rng.Float64()))
		}
		recs = append(recs, drift.NewRecord("m", "v1", "tx", p, start, start.Add(time.Hour), c, 500))
	}
	ws, err := Merge(ref, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Count != 2000 || ws[0].Partitions != 2 || ws[0].Features[0].PSI >= 0.1 {
		t.Fatalf("merged %+v, want one window of 2000 rows from 2 partitions, PSI < 0.1", ws)
	}
	var b strings.Builder
	if err := Print(&b, ws, 500); err != nil || !strings.Contains(b.String(), "2018-04-01T00:00:00Z") {
		t.Fatalf("report %q, %v", b.String(), err)
	}
}
