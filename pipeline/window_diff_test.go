package pipeline

// The window features against a reference: the row-by-row scan they were first computed
// with, kept here in its plainest form. Every feature must be bit for bit the same, since
// live scoring, backfills and exports agree only if each window adds the same values in
// the same order.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// refAcc and refResult are the accumulator and the result of the reference scan.
type refAcc struct {
	n             int
	sum, min, max float64
}

func (a *refAcc) add(x float64) {
	if a.n == 0 || x < a.min {
		a.min = x
	}
	if a.n == 0 || x > a.max {
		a.max = x
	}
	a.n++
	a.sum += x
}

func refResult(f *Feature, a *refAcc) float64 {
	if a.n == 0 {
		if f.Window.Agg == AggCount || f.Window.Agg == AggSum || f.Default == nil {
			return 0
		}
		return *f.Default
	}
	switch f.Window.Agg {
	case AggCount:
		return float64(a.n)
	case AggSum:
		return a.sum
	case AggMean:
		return a.sum / float64(a.n)
	case AggMin:
		return a.min
	default:
		return a.max
	}
}

// refRow is one row of the reference: its time, its order key (feedback) and its
// numeric fields by name.
type refRow struct {
	t    int64
	p    int32
	o    int64
	vals map[string]float64
}

// refWindows computes every window feature of the events in their log order, from the
// definitions: an event window scans all earlier events of its entity in its partition,
// skipping those at or below the partition's newest time less the longest window; a
// feedback window scans all labels of its key in (time, partition, offset) order.
type refWindows struct {
	fs      *FeatureSpec
	s       *Schema
	horizon int64
	maxT    map[int32]int64
	rows    map[int32]map[string][]refRow // partition, entity
	labels  map[string][]refRow           // key, sorted
}

func newRefWindows(t *testing.T, s *Schema, fs *FeatureSpec, labels []Record) *refWindows {
	t.Helper()
	rw := &refWindows{fs: fs, s: s, maxT: map[int32]int64{}, rows: map[int32]map[string][]refRow{}, labels: map[string][]refRow{}}
	for i := range fs.Features {
		if w := fs.Features[i].Window; w != nil && w.Source != SourceFeedback {
			rw.horizon = max(rw.horizon, int64(w.Delay+w.Length))
		}
	}
	fb := &fs.Feedback.Schema
	dec := NewDecoder(fb)
	ev := dec.NewEvent()
	for _, r := range labels {
		if err := dec.Decode(r.Value, r.Timestamp, ev); err != nil {
			t.Fatal(err)
		}
		k := refKey(fb, ev, "term")
		rw.labels[k] = append(rw.labels[k], refRow{t: ev.Time.UnixNano(), p: r.Partition, o: r.Offset, vals: refVals(fb, ev)})
	}
	for _, ls := range rw.labels {
		sort.Slice(ls, func(i, j int) bool {
			a, b := ls[i], ls[j]
			return a.t < b.t || a.t == b.t && (a.p < b.p || a.p == b.p && a.o < b.o)
		})
	}
	return rw
}

func refKey(s *Schema, ev *Event, field string) string {
	i := s.FieldIndex(field)
	if s.Fields[i].Type == TypeString {
		return ev.Str[i]
	}
	return strconv.FormatInt(ev.Int[i], 10)
}

func refVals(s *Schema, ev *Event) map[string]float64 {
	m := map[string]float64{}
	for i, f := range s.Fields {
		if f.Type == TypeInt || f.Type == TypeFloat {
			m[f.Name] = ev.Num[i]
		}
	}
	return m
}

// event returns the window features of ev (partition p), then adds it to the rows.
func (rw *refWindows) event(p int32, ev *Event) map[int]float64 {
	t := ev.Time.UnixNano()
	if _, ok := rw.maxT[p]; !ok {
		rw.maxT[p] = math.MinInt64
		rw.rows[p] = map[string][]refRow{}
	}
	maxT := max(rw.maxT[p], t)
	cut := maxT - rw.horizon
	ent := refKey(rw.s, ev, "ent")
	cur := refRow{t: t, vals: refVals(rw.s, ev)}
	out := map[int]float64{}
	for col := range rw.fs.Features {
		f := &rw.fs.Features[col]
		w := f.Window
		if w == nil {
			continue
		}
		var a refAcc
		hi := t - int64(w.Delay)
		if w.Source == SourceFeedback {
			for _, r := range rw.labels[refKey(rw.s, ev, "term")] {
				refAdd(&a, f, r, hi)
			}
		} else {
			for _, r := range rw.rows[p][ent] {
				if r.t > cut {
					refAdd(&a, f, r, hi)
				}
			}
			if w.Delay == 0 && (w.IncludeCurrent == nil || *w.IncludeCurrent) {
				refAdd(&a, f, cur, t)
			}
		}
		out[col] = refResult(f, &a)
	}
	rw.rows[p][ent] = append(rw.rows[p][ent], cur)
	rw.maxT[p] = maxT
	return out
}

// refAdd adds row r to a when it is in the window (hi − length, hi] of feature f.
func refAdd(a *refAcc, f *Feature, r refRow, hi int64) {
	if r.t <= hi-int64(f.Window.Length) || r.t > hi {
		return
	}
	if f.Window.Agg == AggCount {
		a.n++
		return
	}
	a.add(r.vals[f.Field])
}

// diffSpec is a schema and windows that cover every aggregate, delays, include_current
// on and off, defaults, two stored fields per group, and spans that read different
// subsets of them; keys are ints or strings.
func diffSpec(t *testing.T, keyType FieldType) (*Schema, *FeatureSpec) {
	t.Helper()
	s := &Schema{EventTime: "ts", KeyField: "ent", Fields: []Field{
		{Name: "id", Type: TypeInt, Required: true},
		{Name: "ts", Type: TypeTime, Required: true},
		{Name: "ent", Type: keyType, Required: true},
		{Name: "term", Type: keyType, Required: true},
		{Name: "amount", Type: TypeFloat, Required: true},
		{Name: "qty", Type: TypeInt, Required: true},
	}}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	fb := &FeedbackConfig{Schema: Schema{EventTime: "ts", Fields: []Field{
		{Name: "id", Type: TypeInt, Required: true},
		{Name: "ts", Type: TypeTime, Required: true},
		{Name: "term", Type: keyType, Required: true},
		{Name: "label", Type: TypeFloat, Required: true},
		{Name: "weight", Type: TypeInt, Required: true},
	}}, IDField: "id", LabelField: "label", IdleTimeout: time.Second}
	if err := fb.Compile(); err != nil {
		t.Fatal(err)
	}
	no, yes := false, true
	type spanAggs struct {
		length, delay time.Duration
		current       *bool
		aggs          []string // agg:field, or count
	}
	all := []string{"count", "sum:%s", "mean:%s", "min:%s", "max:%s"}
	both := func(a, b string) []string {
		var out []string
		for _, x := range all {
			if x == "count" {
				out = append(out, x)
				continue
			}
			out = append(out, fmt.Sprintf(x, a), fmt.Sprintf(x, b))
		}
		return out
	}
	ev := []spanAggs{
		{time.Hour, 0, nil, both("amount", "qty")},
		{day, 0, &yes, []string{"count", "mean:amount"}},
		{day, 0, &no, []string{"sum:qty", "max:amount", "mean:amount"}},
		{7 * day, 2 * time.Hour, nil, []string{"min:amount", "max:qty", "count"}},
		{3 * day, day, nil, []string{"mean:qty", "max:amount", "sum:amount"}},
	}
	fbs := []spanAggs{
		{time.Hour, 0, nil, both("label", "weight")},
		{day, 0, nil, []string{"count", "mean:label"}},
		{6 * time.Hour, time.Hour, nil, []string{"sum:weight", "min:label", "max:label"}},
		{2 * day, day, nil, []string{"mean:label", "count", "max:weight"}},
	}
	var feats []Feature
	add := func(src, key string, spans []spanAggs) {
		for i, sp := range spans {
			for j, a := range sp.aggs {
				agg, field, _ := strings.Cut(a, ":")
				f := Feature{Name: fmt.Sprintf("%s_%d_%s_%s", src, i, agg, field), Field: field,
					Window: &Window{Key: key, Agg: Agg(agg), Length: sp.length, Delay: sp.delay, Source: src, IncludeCurrent: sp.current}}
				if j%2 == 1 && agg != "count" && agg != "sum" {
					f.Default = ptr(float64(-1 - i))
				}
				feats = append(feats, f)
			}
		}
	}
	add(SourceEvents, "ent", ev)
	add(SourceFeedback, "term", fbs)
	fs := &FeatureSpec{Features: feats, Feedback: fb}
	if err := fs.Compile(s); err != nil {
		t.Fatal(err)
	}
	return s, fs
}

// diffStream makes n events over partitions input partitions, and labels over 3
// feedback partitions: times mostly increasing, with duplicates and late events;
// entities and terminals come and go (and some come back after they expired); values
// span many orders of magnitude, so that any change in the order of a sum shows.
func diffStream(n int, partitions int32, keyType FieldType, rng *rand.Rand) (events, labels []Record) {
	base := time.Date(2024, 2, 27, 0, 0, 0, 0, time.UTC)
	clock := base
	ents := make([]int, 60)
	terms := make([]int, 25)
	for i := range ents {
		ents[i] = i
	}
	for i := range terms {
		terms[i] = i
	}
	key := func(k int, prefix string) string {
		if keyType == TypeString {
			return fmt.Sprintf(`"%s%d"`, prefix, k)
		}
		return strconv.Itoa(k)
	}
	next := map[int32]int64{}
	lnext := map[int32]int64{}
	var lastLabel time.Time
	for i := range n {
		if rng.IntN(10) > 0 {
			clock = clock.Add(time.Duration(rng.ExpFloat64() * float64(4*time.Minute)).Truncate(time.Millisecond))
		}
		at := clock
		if rng.IntN(16) == 0 {
			// Late, up to three days: past the feedback table's lateness (a day) an
			// event reloads the table, and the polls while it waits must not sweep away
			// the rows it needs (feedbackTable.pin; without it, rows went missing).
			at = at.Add(-time.Duration(rng.Int64N(int64(72 * time.Hour))).Truncate(time.Second))
		}
		if rng.IntN(100) == 0 {
			ents[rng.IntN(len(ents))] = rng.IntN(400) // one leaves, another (perhaps an old one) comes
		}
		if rng.IntN(150) == 0 {
			terms[rng.IntN(len(terms))] = rng.IntN(200)
		}
		// Skewed: a few entities hold most of the events.
		ent := ents[min(rng.IntN(len(ents)), rng.IntN(len(ents)))]
		term := terms[rng.IntN(len(terms))]
		p := int32(ent % int(partitions))
		v := fmt.Sprintf(`{"id":%d,"ts":"%s","ent":%s,"term":%s,"amount":%s,"qty":%d}`,
			i, at.Format(time.RFC3339Nano), key(ent, "e"), key(term, "t"), diffValue(rng), rng.IntN(2000)-500)
		if rng.IntN(100) == 0 {
			v = v[:len(v)-2] // truncated: dead-lettered, in no window
		}
		k := key(ent, "e")
		if keyType == TypeString {
			k = k[1 : len(k)-1]
		}
		events = append(events, Record{Topic: "in", Partition: p, Offset: next[p], Key: []byte(k), Value: []byte(v), Timestamp: at})
		next[p] += 1 + int64(rng.IntN(2))
		if rng.IntN(4) > 0 {
			// Labels are in time order in each partition; some share a time.
			lt := clock
			if rng.IntN(5) == 0 && !lastLabel.IsZero() {
				lt = lastLabel
			}
			lastLabel = lt
			lp := int32(rng.IntN(3))
			labels = append(labels, Record{Topic: "labels", Partition: lp, Offset: lnext[lp], Timestamp: lt,
				Value: []byte(fmt.Sprintf(`{"id":%d,"ts":"%s","term":%s,"label":%s,"weight":%d}`,
					i, lt.Format(time.RFC3339Nano), key(term, "t"), diffValue(rng), rng.IntN(100)))})
			lnext[lp]++
		}
	}
	return events, labels
}

// diffValue is a number whose magnitude varies widely, sometimes zero or negative zero,
// sometimes ±1e17: a window that holds both cancels them, and what remains of the small
// values depends on which of them were added while the large one was there. Without such
// values a different order would change only bits that float32 drops.
func diffValue(rng *rand.Rand) string {
	switch rng.IntN(40) {
	case 0:
		return "0"
	case 1:
		return "-0.0"
	case 2:
		return "1e17"
	case 3:
		return "-1e17"
	}
	x := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-4))
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// runWindows scores events through a window state (with history, when set) and returns
// the window features of every event that decodes, by source record.
func runWindows(t *testing.T, s *Schema, fs *FeatureSpec, events, labels []Record, hist History, seed uint64) map[srcID][]float32 {
	t.Helper()
	ws, err := newWindowState(fs, s, hist, &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(seed, 7))}, NewMetrics(prometheus.NewRegistry()), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(s)
	ev := dec.NewEvent()
	out := map[srcID][]float32{}
	for i := range events {
		r := &events[i]
		feat := make([]float32, fs.Len())
		if decodeRecord(dec, fs, r, ev, feat) != nil {
			continue
		}
		if err := ws.features(context.Background(), r, ev, feat); err != nil {
			t.Fatal(err)
		}
		out[srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}] = feat
	}
	return out
}

// The window features equal those of the reference scan, bit for bit, over random
// streams: int and string keys, one input partition (long enough for the state's sweeps)
// or several, and a run resumed mid-stream from the log (the state rebuilt by replay).
func TestWindowsMatchReferenceScan(t *testing.T) {
	t.Parallel()
	cases := []struct {
		keyType    FieldType
		partitions int32
		n          int
	}{
		{TypeInt, 1, 9000},
		{TypeString, 2, 5000},
		{TypeInt, 3, 5000},
		{TypeString, 1, 9000},
	}
	for seed, c := range cases {
		s, fs := diffSpec(t, c.keyType)
		events, labels := diffStream(c.n, c.partitions, c.keyType, rand.New(rand.NewPCG(uint64(seed), 27)))
		ref := newRefWindows(t, s, fs, labels)
		dec := NewDecoder(s)
		ev := dec.NewEvent()
		scratch := make([]float32, fs.Len())
		want := map[srcID]map[int]float64{}
		for i := range events {
			r := &events[i]
			if decodeRecord(dec, fs, r, ev, scratch) != nil {
				continue
			}
			want[srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}] = ref.event(r.Partition, ev)
		}
		what := fmt.Sprintf("seed %d (%s keys, %d partitions)", seed, c.keyType, c.partitions)
		got := runWindows(t, s, fs, events, labels, nil, uint64(seed))
		sameWindowBits(t, what, fs, want, got)
		checkCoverage(t, what, fs, want)
		// Resumed half way: each partition's state is rebuilt from the log.
		resumed := runWindows(t, s, fs, events[len(events)/2:], labels, &memHistory{recs: events}, uint64(seed)+100)
		for id := range want {
			if _, ok := resumed[id]; !ok {
				delete(want, id)
			}
		}
		sameWindowBits(t, what+", resumed", fs, want, resumed)
	}
}

// sameWindowBits requires every window feature of got to have exactly the bits of want's.
func sameWindowBits(t *testing.T, what string, fs *FeatureSpec, want map[srcID]map[int]float64, got map[srcID][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events scored, want %d", what, len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		for col, x := range w {
			if math.Float32bits(g[col]) != math.Float32bits(float32(x)) {
				t.Fatalf("%s: %v: feature %s is %v (bits %#x), the reference scan's is %v (bits %#x)",
					what, id, fs.Features[col].Name, g[col], math.Float32bits(g[col]), float32(x), math.Float32bits(float32(x)))
			}
		}
	}
}

// checkCoverage fails when the stream leaves a window feature always empty or constant:
// the comparison would then prove little.
func checkCoverage(t *testing.T, what string, fs *FeatureSpec, want map[srcID]map[int]float64) {
	t.Helper()
	for col := range fs.Features {
		distinct := map[float64]bool{}
		for _, w := range want {
			distinct[w[col]] = true
		}
		if len(distinct) < 5 {
			t.Fatalf("%s: feature %s takes only %d values: the stream does not exercise it", what, fs.Features[col].Name, len(distinct))
		}
	}
}
