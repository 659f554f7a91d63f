package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/scorer"
)

const day = 24 * time.Hour

// handbookSpec is streamscore.yaml's schema and its 15 handbook features.
func handbookSpec(t testing.TB) (*Schema, *FeatureSpec) {
	t.Helper()
	s := referenceSchema(t)
	s.KeyField = "customer_id"
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	fb := &FeedbackConfig{Schema: Schema{EventTime: "tx_datetime", Fields: []Field{
		{Name: "transaction_id", Type: TypeInt, Required: true},
		{Name: "tx_datetime", Type: TypeTime, Required: true},
		{Name: "terminal_id", Type: TypeInt, Required: true},
		{Name: "tx_fraud", Type: TypeInt, Required: true, Min: ptr(0), Max: ptr(1)},
	}}, IDField: "transaction_id", LabelField: "tx_fraud", IdleTimeout: time.Second}
	if err := fb.Compile(); err != nil {
		t.Fatal(err)
	}
	feats := []Feature{
		{Name: "TX_AMOUNT", Field: "tx_amount"},
		{Name: "TX_DURING_WEEKEND", Field: "tx_datetime", Transform: TransformWeekend},
		{Name: "TX_DURING_NIGHT", Field: "tx_datetime", Transform: TransformNight},
	}
	for _, n := range []int{1, 7, 30} {
		w := time.Duration(n) * day
		feats = append(feats,
			Feature{Name: fmt.Sprintf("CUSTOMER_ID_NB_TX_%dDAY_WINDOW", n), Window: &Window{Key: "customer_id", Agg: AggCount, Length: w}},
			Feature{Name: fmt.Sprintf("CUSTOMER_ID_AVG_AMOUNT_%dDAY_WINDOW", n), Field: "tx_amount", Window: &Window{Key: "customer_id", Agg: AggMean, Length: w}})
	}
	for _, n := range []int{1, 7, 30} {
		w := time.Duration(n) * day
		feats = append(feats,
			Feature{Name: fmt.Sprintf("TERMINAL_ID_NB_TX_%dDAY_WINDOW", n), Window: &Window{Key: "terminal_id", Agg: AggCount, Length: w, Delay: 7 * day, Source: SourceFeedback}},
			Feature{Name: fmt.Sprintf("TERMINAL_ID_RISK_%dDAY_WINDOW", n), Field: "tx_fraud", Window: &Window{Key: "terminal_id", Agg: AggMean, Length: w, Delay: 7 * day, Source: SourceFeedback}})
	}
	fs := &FeatureSpec{Features: feats, Feedback: fb}
	if err := fs.Compile(s); err != nil {
		t.Fatal(err)
	}
	return s, fs
}

// memHistory serves the records before an offset of a partition.
type memHistory struct {
	recs  []Record
	calls int
}

func (h *memHistory) Replay(_ context.Context, tp TopicPartition, end int64, fn func(*Record) error) error {
	h.calls++
	for i := range h.recs {
		r := &h.recs[i]
		if r.Topic == tp.Topic && r.Partition == tp.Partition && r.Offset < end {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

type sliceSource struct{ recs []Record }

func (s *sliceSource) Fetch(context.Context) ([]Record, error) {
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	n := min(97, len(s.recs))
	out := s.recs[:n]
	s.recs = s.recs[n:]
	return out, nil
}

func runFeatures(t *testing.T, s *Schema, fs *FeatureSpec, recs []Record, fb FeedbackSource, hist History, m *Metrics) map[srcID][]float32 {
	t.Helper()
	feats, err := scoreFeatures(s, fs, recs, fb, hist, m)
	if err != nil {
		t.Fatal(err)
	}
	return feats
}

// scoreFeatures runs the operator over recs and returns each prediction's features. It
// reports failure as an error, so that a test may call it off the test goroutine.
func scoreFeatures(s *Schema, fs *FeatureSpec, recs []Record, fb FeedbackSource, hist History, m *Metrics) (map[srcID][]float32, error) {
	sink := newRecordingSink()
	op, err := New(Config{
		Schema: s, Features: fs, Model: FeaturesOnly{N: fs.Len()},
		Topics: Topics{Predictions: "preds", DeadLetter: "dlq"}, Batch: scorer.BatcherConfig{MaxSize: 64},
		Feedback: fb, History: hist, IncludeFeatures: true, Metrics: m, Logger: zap.NewNop(),
	}, &sliceSource{recs: recs}, sink)
	if err != nil {
		return nil, err
	}
	if err := op.Run(context.Background()); err != nil {
		return nil, err
	}
	return sink.feats, nil
}

// bruteForce computes the handbook features of every good event straight from the
// definitions: all earlier events of the customer in (t-n, t], all labels of the
// terminal in (t-7d-n, t-7d].
func bruteForce(t *testing.T, s *Schema, recs, labels []Record) map[srcID][]float32 {
	t.Helper()
	type row struct {
		id           srcID
		t            time.Time
		cust, term   int64
		amount, frau float64
	}
	dec := NewDecoder(s)
	ev := dec.NewEvent()
	var events []row
	for _, r := range recs {
		if dec.Decode(r.Value, r.Timestamp, ev) != nil {
			continue
		}
		events = append(events, row{id: srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}, t: ev.Time, cust: ev.Int[2], term: ev.Int[3], amount: ev.Num[4]})
	}
	var labs []row
	for _, r := range labels {
		var l struct {
			T     time.Time `json:"tx_datetime"`
			Term  int64     `json:"terminal_id"`
			Fraud float64   `json:"tx_fraud"`
		}
		if err := json.Unmarshal(r.Value, &l); err != nil {
			t.Fatal(err)
		}
		labs = append(labs, row{t: l.T, term: l.Term, frau: l.Fraud})
	}
	// Each event looks only at its own customer's events and its own terminal's labels, in
	// their original order: the same rows, summed in the same order, as a scan of all of
	// them, without the quadratic cost (minutes under -race at 12,000 events).
	byCust := map[int64][]int{}
	for i, e := range events {
		byCust[e.cust] = append(byCust[e.cust], i)
	}
	byTerm := map[int64][]row{}
	for _, l := range labs {
		byTerm[l.term] = append(byTerm[l.term], l)
	}
	out := map[srcID][]float32{}
	for i, e := range events {
		f := []float32{float32(e.amount), 0, 0}
		if wd := e.t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			f[1] = 1
		}
		if e.t.Hour() <= 6 {
			f[2] = 1
		}
		for _, n := range []time.Duration{1, 7, 30} {
			var cnt, sum float64
			for _, j := range byCust[e.cust] {
				if j > i {
					break // events[:i+1]: those read up to this one
				}
				if o := events[j]; o.t.After(e.t.Add(-n*day)) && !o.t.After(e.t) {
					cnt++
					sum += o.amount
				}
			}
			f = append(f, float32(cnt), float32(sum/cnt))
		}
		for _, n := range []time.Duration{1, 7, 30} {
			hi := e.t.Add(-7 * day)
			var cnt, fraud float64
			for _, l := range byTerm[e.term] {
				if l.t.After(hi.Add(-n*day)) && !l.t.After(hi) {
					cnt++
					fraud += l.frau
				}
			}
			risk := 0.0
			if cnt > 0 {
				risk = fraud / cnt
			}
			f = append(f, float32(cnt), float32(risk))
		}
		out[e.id] = f
	}
	return out
}

func sameFeatures(t *testing.T, what string, want, got map[srcID][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events with features, want %d", what, len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if len(g) != len(w) {
			t.Fatalf("%s: %v has %d features, want %d", what, id, len(g), len(w))
		}
		for j := range w {
			if g[j] != w[j] {
				t.Fatalf("%s: %v feature %d is %v, want %v (all: %v vs %v)", what, id, j, g[j], w[j], g, w)
			}
		}
	}
}

// The operator's window features equal the handbook definitions computed by brute force,
// whatever the interleaving of the feedback partitions.
func TestWindowFeaturesMatchBruteForce(t *testing.T) {
	t.Parallel() // self-contained and CPU-bound: overlaps the package's other long tests on CI's 2 cores
	s, fs := handbookSpec(t)
	// 12000 events 17s apart: 2.4 days, so 30-day windows hold everything; stretch time
	// to cover every window: one event every 5 minutes is 41 days.
	recs, _, labels := testRecordsWithLabels(12000, rand.New(rand.NewPCG(3, 4)))
	stretch(t, recs, labels, 5*time.Minute)
	want := bruteForce(t, s, recs, labels)
	nonZero := 0
	for _, f := range want {
		if f[9] > 0 {
			nonZero++
		}
	}
	if nonZero < 1000 {
		t.Fatalf("only %d events have terminal history: the test data does not exercise the feedback windows", nonZero)
	}
	for seed := uint64(0); seed < 3; seed++ {
		got := runFeatures(t, s, fs, recs, &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(seed, 1))}, nil, nil)
		sameFeatures(t, fmt.Sprintf("feedback interleaving %d", seed), want, got)
	}
}

// stretch respaces events (and their labels) dt apart, keeping their order.
func stretch(t testing.TB, recs, labels []Record, dt time.Duration) {
	t.Helper()
	base := time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
	at := map[string]string{}
	for i := range recs {
		var m map[string]any
		if err := json.Unmarshal(recs[i].Value, &m); err != nil {
			continue // truncated: stays bad
		}
		old := m["tx_datetime"].(string)
		ts := base.Add(time.Duration(m["transaction_id"].(float64)) * dt).Format(time.RFC3339)
		at[old+"/"+fmt.Sprint(m["transaction_id"])] = ts
		recs[i].Value = []byte(replaceOnce(string(recs[i].Value), old, ts))
	}
	for i := range labels {
		var m map[string]any
		if err := json.Unmarshal(labels[i].Value, &m); err != nil {
			t.Fatal(err)
		}
		old := m["tx_datetime"].(string)
		labels[i].Value = []byte(replaceOnce(string(labels[i].Value), old, at[old+"/"+fmt.Sprint(m["transaction_id"])]))
	}
}

func replaceOnce(s, old, repl string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + repl + s[i+len(old):]
		}
	}
	return s
}

// After a restart mid-partition the state is rebuilt from the log: the features equal
// those of an uninterrupted run. Without history they do not (the check can fail).
func TestWindowStateRebuiltFromHistory(t *testing.T) {
	s, fs := handbookSpec(t)
	recs, _, labels := testRecordsWithLabels(6000, rand.New(rand.NewPCG(8, 9)))
	stretch(t, recs, labels, 3*time.Minute)
	full := runFeatures(t, s, fs, recs, &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(1, 1))}, nil, nil)
	// Resume each partition at a different point, as after a restart from committed offsets.
	cut := map[int32]int64{0: 300, 1: 1100, 2: 2500}
	var tail []Record
	for _, r := range recs {
		if r.Offset >= cut[r.Partition] {
			tail = append(tail, r)
		}
	}
	hist := &memHistory{recs: recs}
	m := NewMetrics(prometheus.NewRegistry())
	resumed := runFeatures(t, s, fs, tail, &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(2, 2))}, hist, m)
	want := map[srcID][]float32{}
	for id, f := range full {
		if id.off >= cut[id.tp.Partition] {
			want[id] = f
		}
	}
	sameFeatures(t, "resumed with history", want, resumed)
	if hist.calls != 3 || testutil.ToFloat64(m.stateRebuilds) != 3 {
		t.Fatalf("history replays %d, rebuilds %v: want one per partition", hist.calls, testutil.ToFloat64(m.stateRebuilds))
	}
	cold := runFeatures(t, s, fs, tail, &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(2, 2))}, nil, nil)
	differ := 0
	for id, f := range want {
		if cold[id][3] != f[3] {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("without history the resumed run has the same features: the test does not exercise the rebuild")
	}
}

func TestWindowAggregates(t *testing.T) {
	s := referenceSchema(t)
	s.KeyField = "customer_id"
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	no := false
	fs := &FeatureSpec{Features: []Feature{
		{Name: "n_prev", Window: &Window{Key: "customer_id", Agg: AggCount, Length: day, IncludeCurrent: &no}},
		{Name: "sum", Field: "tx_amount", Window: &Window{Key: "customer_id", Agg: AggSum, Length: day}},
		{Name: "min", Field: "tx_amount", Window: &Window{Key: "customer_id", Agg: AggMin, Length: day}},
		{Name: "max_prev", Field: "tx_amount", Window: &Window{Key: "customer_id", Agg: AggMax, Length: day, IncludeCurrent: &no}, Default: ptr(-1)},
		{Name: "n_yesterday", Window: &Window{Key: "customer_id", Agg: AggCount, Length: day, Delay: day}},
	}}
	if err := fs.Compile(s); err != nil {
		t.Fatal(err)
	}
	ev := func(off int64, ts string, cust int, amount string) Record {
		return Record{Topic: "in", Offset: off, Key: []byte(fmt.Sprint(cust)),
			Value: []byte(fmt.Sprintf(`{"transaction_id":%d,"tx_datetime":"%s","customer_id":%d,"terminal_id":1,"tx_amount":%s}`, off, ts, cust, amount))}
	}
	recs := []Record{
		ev(0, "2018-04-01T10:00:00Z", 1, "10"),
		ev(1, "2018-04-01T12:00:00Z", 1, "30"),
		ev(2, "2018-04-01T13:00:00Z", 2, "99"), // another customer
		ev(3, "2018-04-02T11:00:00Z", 1, "5"),  // 10:00 of yesterday has left the day window
		ev(4, "2018-04-02T11:00:00Z", 7, "1"),  // key 7: its first event
		ev(5, "2018-04-02T12:00:00Z", 1, "x"),  // bad: dead-lettered, not in any window
		ev(6, "2018-04-03T11:30:00Z", 1, "20"), // yesterday's window (04-01T11:30, 04-02T11:30] holds 12:00 and 11:00
		{Topic: "in", Offset: 7, Key: []byte("3"), // key does not match customer_id: dead-lettered
			Value: []byte(`{"transaction_id":7,"tx_datetime":"2018-04-03T12:00:00Z","customer_id":1,"terminal_id":1,"tx_amount":1}`)},
	}
	got := runFeatures(t, s, fs, recs, nil, nil, nil)
	want := map[int64][]float32{
		0: {0, 10, 10, -1, 0},
		1: {1, 40, 10, 10, 0},
		2: {0, 99, 99, -1, 0},
		3: {1, 35, 5, 30, 1},
		4: {0, 1, 1, -1, 0},
		6: {0, 20, 20, -1, 2},
	}
	if len(got) != len(want) {
		t.Fatalf("%d predictions, want %d: %v", len(got), len(want), got)
	}
	for off, w := range want {
		g := got[srcID{TopicPartition{Topic: "in", Partition: 0}, off}]
		for j := range w {
			if g[j] != w[j] {
				t.Fatalf("offset %d: features %v, want %v", off, g, w)
			}
		}
	}
}

func TestWindowSpecErrors(t *testing.T) {
	s := referenceSchema(t)
	s.KeyField = "customer_id"
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	yes := true
	for _, c := range []struct {
		f    Feature
		want string
	}{
		{Feature{Name: "a", Window: &Window{Key: "terminal_id", Agg: AggCount, Length: day}}, "must be keyed by the record key"},
		{Feature{Name: "a", Window: &Window{Key: "customer_id", Agg: AggCount}}, "length must be positive"},
		{Feature{Name: "a", Window: &Window{Key: "customer_id", Agg: "median", Length: day}}, "want count, sum, mean, min or max"},
		{Feature{Name: "a", Field: "tx_amount", Window: &Window{Key: "customer_id", Agg: AggCount, Length: day}}, "count takes no field"},
		{Feature{Name: "a", Field: "channel", Window: &Window{Key: "customer_id", Agg: AggMean, Length: day}}, "needs a required numeric field"},
		{Feature{Name: "a", Window: &Window{Key: "customer_id", Agg: AggCount, Length: day, Delay: day, IncludeCurrent: &yes}}, "include_current needs"},
		{Feature{Name: "a", Window: &Window{Key: "terminal_id", Agg: AggCount, Length: day, Source: SourceFeedback}}, "needs a compiled feedback schema"},
		{Feature{Name: "a", Window: &Window{Key: "customer_id", Agg: AggCount, Length: day, Source: "table"}}, "want events or feedback"},
	} {
		fs := &FeatureSpec{Features: []Feature{c.f}}
		err := fs.Compile(s)
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", *c.f.Window, err, c.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
