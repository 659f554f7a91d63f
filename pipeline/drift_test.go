package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/drift"
)

func shippedReference(t testing.TB) *drift.Reference {
	t.Helper()
	raw, err := os.ReadFile("../testdata/model/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := drift.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

type namedScorer struct{ Scorer }

func (namedScorer) Name() string    { return "fraud" }
func (namedScorer) Version() string { return "v1" }

// TestDriftWindowsCloseOnEventTime: a partition's window closes at its first record past
// the window's end, whatever the other partitions do, so the records do not depend on how
// partitions interleave; late records are counted apart.
func TestDriftWindowsCloseOnEventTime(t *testing.T) {
	ref := shippedReference(t)
	feat := make([]float32, len(ref.Features))
	run := func(order []int) []string {
		d := newDriftState(DriftConfig{Topic: "drift", Window: time.Hour, MinCount: 2,
			Reference: func(Scorer) *drift.Reference { return ref }}, referenceNames(ref), newDriftMetrics(nil), zap.NewNop())
		base := time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
		// two partitions, records 20 minutes apart, one late record in partition 1
		var recs []Record
		var times []time.Time
		for p := int32(0); p < 2; p++ {
			for i := 0; i < 9; i++ {
				et := base.Add(time.Duration(i) * 20 * time.Minute)
				if p == 1 && i == 5 {
					et = base // late: its window closed at i == 3
				}
				recs = append(recs, Record{Topic: "tx", Partition: p, Offset: int64(i)})
				times = append(times, et)
			}
		}
		var got []string
		for _, i := range order {
			for _, o := range d.observe(&recs[i], namedScorer{}, times[i], feat, 0.5) {
				got = append(got, string(o.Key)+" "+string(o.Value))
			}
		}
		return got
	}
	seq := make([]int, 18)
	inter := make([]int, 0, 18)
	for i := range seq {
		seq[i] = i
	}
	for i := 0; i < 9; i++ {
		inter = append(inter, 9+i, i) // partition 1 first, interleaved
	}
	a, b := run(seq), run(inter)
	if len(a) != 4 {
		t.Fatalf("%d windows closed, want 2 per partition (the third stays open)", len(a))
	}
	perPart := func(recs []string) map[string][]string {
		m := map[string][]string{}
		for _, r := range recs {
			m[r[:10]] = append(m[r[:10]], r)
		}
		return m
	}
	if fmt.Sprint(perPart(a)) != fmt.Sprint(perPart(b)) {
		t.Fatalf("records depend on the interleaving:\n%v\n%v", a, b)
	}
	var r drift.Record
	if err := json.Unmarshal([]byte(a[len(a)-1][len("fraud/tx/1 "):]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Source.Partition != 1 || r.Count != 2 || r.Late != 1 || !r.Judged || r.Partial {
		t.Fatalf("partition 1's second window: %+v, want 2 rows, 1 late, judged, complete", r)
	}
}

// TestDriftGaugesMergeByWindow: the gauges merge the partitions' windows by their start,
// whatever order the partitions close them in. In a catch-up one partition may be read
// windows ahead of the others, and partition 0's event times run two windows past the
// others' here; no partition's window has min_count rows on its own, only the three
// partitions' together, and the gauges show the newest window all three closed, the same
// whether the partitions are read one after the other or interleaved.
func TestDriftGaugesMergeByWindow(t *testing.T) {
	ref := shippedReference(t)
	feat := make([]float32, len(ref.Features))
	base := time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
	const windows, perWindow = 5, 2 // closed windows per partition, rows in each
	type row struct {
		rec Record
		et  time.Time
	}
	var parts [3][]row
	for p := range parts {
		n := windows * perWindow
		if p == 0 {
			n += 2 * perWindow
		}
		for i := 0; i <= n; i++ { // the last row opens a window
			et := base.Add(time.Duration(i/perWindow)*time.Hour + time.Duration(p)*time.Minute)
			parts[p] = append(parts[p], row{Record{Topic: "tx", Partition: int32(p), Offset: int64(i)}, et})
		}
	}
	run := func(order []row) (end float64, psis int, scorePSI float64) {
		m := newDriftMetrics(nil)
		d := newDriftState(DriftConfig{Topic: "drift", Window: time.Hour, MinCount: 3 * perWindow,
			Reference: func(Scorer) *drift.Reference { return ref }}, referenceNames(ref), m, zap.NewNop())
		for i := range order {
			d.observe(&order[i].rec, namedScorer{}, order[i].et, feat, 0.5)
		}
		return testutil.ToFloat64(m.windowEnd.WithLabelValues("fraud")), testutil.CollectAndCount(m.featurePSI),
			testutil.ToFloat64(m.scorePSI.WithLabelValues("fraud"))
	}
	catchUp := slices.Concat(parts[0], parts[1], parts[2])
	var inter []row
	for i := range parts[0] {
		for _, p := range []int{2, 0, 1} {
			if i < len(parts[p]) {
				inter = append(inter, parts[p][i])
			}
		}
	}
	want := float64(base.Add(windows * time.Hour).Unix())
	for name, order := range map[string][]row{"one partition after the other": catchUp, "interleaved": inter} {
		end, psis, _ := run(order)
		if end != want || psis != len(ref.Features) {
			t.Errorf("%s: the gauges show the window ending %v with %d feature PSIs, want the window ending %v with all %d",
				name, time.Unix(int64(end), 0).UTC(), psis, time.Unix(int64(want), 0).UTC(), len(ref.Features))
		}
	}
	_, _, a := run(catchUp)
	_, _, b := run(inter)
	if a != b {
		t.Errorf("score PSI %v read one partition after the other, %v interleaved: the gauges depend on arrival", a, b)
	}
}

func referenceNames(ref *drift.Reference) []string {
	n := make([]string, len(ref.Features))
	for i := range ref.Features {
		n[i] = ref.Features[i].Name
	}
	return n
}

// BenchmarkDriftObserve is drift monitoring's cost per scored row, apart from the
// operator: 15 features and the score binned, hourly windows closed every 200 rows (the
// record's JSON and the gauges' merge included) or every 20,000.
func BenchmarkDriftObserve(b *testing.B) {
	b.Run("rows/window=200", func(b *testing.B) { benchmarkDriftObserve(b, 18*time.Second) })
	b.Run("rows/window=20000", func(b *testing.B) { benchmarkDriftObserve(b, 180*time.Millisecond) })
}

func benchmarkDriftObserve(b *testing.B, spacing time.Duration) {
	ref := shippedReference(b)
	d := newDriftState(DriftConfig{Topic: "drift", Window: time.Hour, MinCount: 100,
		Reference: func(Scorer) *drift.Reference { return ref }}, referenceNames(ref), newDriftMetrics(nil), zap.NewNop())
	feat := []float32{57.16, 0, 1, 3, 50, 12, 48, 40, 52, 1, 0, 6, 0, 25, 0.04}
	rec := &Record{Topic: "tx", Partition: 0}
	base := time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
	m := namedScorer{}
	b.ReportAllocs()
	for i := range b.N {
		rec.Offset = int64(i)
		d.observe(rec, m, base.Add(time.Duration(i)*spacing), feat, 0.01)
	}
}
