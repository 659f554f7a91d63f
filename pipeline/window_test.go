package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
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

// memFeedback serves prepared feedback records, each partition in order, the partitions
// interleaved in random chunks; it is bounded (each partition ends) unless live, where a
// partition past its records reports AtEnd and then stays silent.
type memFeedback struct {
	recs    []Record
	rng     *rand.Rand
	live    bool
	silent  map[int32]bool // live: partitions that never deliver (still listed)
	parts   []int32
	byPart  map[int32][]Record
	pos     map[int32]int
	started bool
	rewinds int
}

func (f *memFeedback) init() {
	if f.started {
		return
	}
	f.started = true
	f.byPart = map[int32][]Record{}
	seen := map[int32]bool{}
	for _, r := range f.recs {
		f.byPart[r.Partition] = append(f.byPart[r.Partition], r)
		seen[r.Partition] = true
	}
	for p := range f.silent {
		seen[p] = true
	}
	for p := range seen {
		f.parts = append(f.parts, p)
	}
	sort.Slice(f.parts, func(i, j int) bool { return f.parts[i] < f.parts[j] })
	f.pos = map[int32]int{}
}

func (f *memFeedback) Partitions() []int32 { f.init(); return f.parts }

func (f *memFeedback) Rewind(context.Context) error {
	f.init()
	f.pos = map[int32]int{}
	f.rewinds++
	return nil
}

func (f *memFeedback) Poll(ctx context.Context) (FeedbackPoll, error) {
	f.init()
	var out FeedbackPoll
	open := 0
	for _, p := range f.parts {
		rs := f.byPart[p]
		if f.silent[p] || f.pos[p] >= len(rs) {
			if !f.live {
				out.Progress = append(out.Progress, FeedbackProgress{Partition: p, Ended: true})
			}
			continue
		}
		open++
		n := min(1+f.rng.IntN(200), len(rs)-f.pos[p])
		out.Records = append(out.Records, rs[f.pos[p]:f.pos[p]+n]...)
		f.pos[p] += n
		if !f.live && f.pos[p] >= len(rs) {
			out.Progress = append(out.Progress, FeedbackProgress{Partition: p, Ended: true})
		}
	}
	if open == 0 {
		if !f.live {
			return out, io.EOF
		}
		<-ctx.Done()
		return out, ctx.Err()
	}
	return out, nil
}

func (f *memFeedback) CaughtUp(context.Context) (map[int32]bool, error) {
	f.init()
	out := map[int32]bool{}
	for _, p := range f.parts {
		out[p] = f.silent[p] || f.pos[p] >= len(f.byPart[p])
	}
	return out, nil
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
			for _, o := range events[:i+1] {
				if o.cust == e.cust && o.t.After(e.t.Add(-n*day)) && !o.t.After(e.t) {
					cnt++
					sum += o.amount
				}
			}
			f = append(f, float32(cnt), float32(sum/cnt))
		}
		for _, n := range []time.Duration{1, 7, 30} {
			hi := e.t.Add(-7 * day)
			var cnt, fraud float64
			for _, l := range labs {
				if l.term == e.term && l.t.After(hi.Add(-n*day)) && !l.t.After(hi) {
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

// A live feedback partition that is caught up and silent stops holding events back after
// the idle timeout; the events are scored with the feedback the other partitions gave.
func TestFeedbackIdlePartitionReleasesEvents(t *testing.T) {
	s, fs := handbookSpec(t)
	fs.Feedback.IdleTimeout = 20 * time.Millisecond
	recs, _, labels := testRecordsWithLabels(2000, rand.New(rand.NewPCG(5, 6)))
	var p0 []Record
	for _, l := range labels {
		if l.Partition == 0 {
			p0 = append(p0, l)
		}
	}
	m := NewMetrics(prometheus.NewRegistry())
	type result struct {
		feats map[srcID][]float32
		err   error
	}
	done := make(chan result, 1)
	go func() {
		feats, err := scoreFeatures(s, fs, recs, &memFeedback{recs: p0, rng: rand.New(rand.NewPCG(1, 1)), live: true, silent: map[int32]bool{1: true}}, nil, m)
		done <- result{feats, err}
	}()
	select {
	case got := <-done:
		if got.err != nil {
			t.Fatal(got.err)
		}
		if len(got.feats) == 0 {
			t.Fatal("no predictions")
		}
	case <-time.After(time.Minute):
		t.Fatal("events still held back a minute after the idle timeout")
	}
	if testutil.ToFloat64(m.feedbackIdle) < 1 {
		t.Fatal("no partition was marked idle")
	}
}

// An event older than what the feedback table still holds makes it read the topic again:
// the features stay exact.
func TestFeedbackTableReloadsForOldEvents(t *testing.T) {
	t.Parallel() // self-contained and CPU-bound: overlaps the package's other long tests on CI's 2 cores
	s, fs := handbookSpec(t)
	fs.Feedback.Retention = 40 * day // the shortest that holds a 37-day horizon
	recs, _, labels := testRecordsWithLabels(8000, rand.New(rand.NewPCG(11, 12)))
	stretch(t, recs, labels, 10*time.Minute) // 55 days
	want := bruteForce(t, s, recs, labels)
	// Partition 2 last: its early events come after the others have moved the table on.
	var ordered []Record
	for _, p := range []int32{0, 1, 2} {
		for _, r := range recs {
			if r.Partition == p {
				ordered = append(ordered, r)
			}
		}
	}
	m := NewMetrics(prometheus.NewRegistry())
	fb := &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(1, 1))}
	got := runFeatures(t, s, fs, ordered, fb, nil, m)
	sameFeatures(t, "with reloads", want, got)
	if fb.rewinds == 0 || testutil.ToFloat64(m.feedbackReloads) == 0 {
		t.Fatal("the feedback table was never reloaded: the test does not exercise retention")
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

// TestFeedbackTableBounds: the cached bounds answer complete and reliesOnIdle as a loop
// over the partitions would, for random partition states.
func TestFeedbackTableBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	ft := &feedbackTable{}
	for range 2000 {
		ft.parts = map[int32]*fbPart{}
		for p := range int32(rng.IntN(6)) {
			ft.parts[p] = &fbPart{maxT: int64(rng.IntN(10)) - 1, ended: rng.IntN(4) == 0, idle: rng.IntN(3) == 0}
		}
		ft.refresh()
		for need := int64(-2); need < 11; need++ {
			complete, relies := true, false
			for _, p := range ft.parts {
				if !p.ended && !p.idle && p.maxT <= need {
					complete = false
				}
				if p.idle && !p.ended && p.maxT <= need {
					relies = true
				}
			}
			if ft.complete(need) != complete || ft.reliesOnIdle(need) != relies {
				t.Fatalf("need %d, partitions %v: complete %v reliesOnIdle %v, want %v %v", need, ft.parts, ft.complete(need), ft.reliesOnIdle(need), complete, relies)
			}
		}
	}
}

// TestFeedbackIdlePartitionConfirmedAgain: an idle labels partition that the broker says
// is no longer caught up when an input fetch relies on it holds that fetch's events back
// until its labels are read (the guard of newFetch).
func TestFeedbackIdlePartitionConfirmedAgain(t *testing.T) {
	_, fs := handbookSpec(t)
	fs.Feedback.IdleTimeout = 20 * time.Millisecond
	_, _, labels := testRecordsWithLabels(2000, rand.New(rand.NewPCG(5, 6)))
	var p0, p1 []Record
	for _, l := range labels {
		switch l.Partition {
		case 0:
			p0 = append(p0, l)
		case 1:
			p1 = append(p1, l)
		}
	}
	if len(p0) == 0 || len(p1) == 0 {
		t.Fatalf("labels on partition 0: %d, on 1: %d", len(p0), len(p1))
	}
	groups := feedbackGroups(fs)
	src := &memFeedback{recs: append(append([]Record{}, p0...), p1...), rng: rand.New(rand.NewPCG(1, 1)), live: true, silent: map[int32]bool{1: true}}
	ft := newFeedbackTable(fs.Feedback, groups, src, NewMetrics(prometheus.NewRegistry()), zap.NewNop())
	last0 := labelTime(t, fs, &p0[len(p0)-1])
	at := last0 + ft.minDelay - 1 // needs every label up to just before partition 0's last
	need := at - ft.minDelay
	if first1 := labelTime(t, fs, &p1[0]); first1 > need {
		t.Fatalf("partition 1's first label (%d) is after the time needed (%d)", first1, need)
	}
	ctx := context.Background()

	ft.newFetch()
	if err := ft.ensure(ctx, at); err != nil {
		t.Fatal(err)
	}
	if !ft.parts[1].idle {
		t.Fatal("the silent partition 1 was not marked idle")
	}

	// Labels reach partition 1 (written before the next input fetch's events): the broker
	// no longer reports it caught up.
	src.silent[1] = false
	ft.newFetch()
	if err := ft.ensure(ctx, at); err != nil {
		t.Fatal(err)
	}
	if p := ft.parts[1]; p.idle || p.maxT <= need {
		t.Fatalf("partition 1 after the next fetch: idle %v, newest label %d, needed past %d: its labels were not read first", p.idle, p.maxT, need)
	}
}

// labelTime is the event time of a feedback record, in nanoseconds.
func labelTime(t *testing.T, fs *FeatureSpec, r *Record) int64 {
	t.Helper()
	dec := NewDecoder(&fs.Feedback.Schema)
	ev := dec.NewEvent()
	if err := dec.Decode(r.Value, r.Timestamp, ev); err != nil {
		t.Fatal(err)
	}
	return ev.Time.UnixNano()
}

// BenchmarkFeedbackReady is the feedback join's per-event check when the table is ready (the
// common case), with 6 and 64 labels partitions.
func BenchmarkFeedbackReady(b *testing.B) {
	_, fs := handbookSpec(b)
	groups := feedbackGroups(fs)
	for _, n := range []int32{6, 64} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			ft := newFeedbackTable(fs.Feedback, groups, &memFeedback{rng: rand.New(rand.NewPCG(1, 1)), live: true}, NewMetrics(prometheus.NewRegistry()), zap.NewNop())
			for p := range n {
				ft.parts[p] = &fbPart{maxT: math.MaxInt64 - 1}
			}
			ft.refresh()
			ctx := context.Background()
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := ft.ensure(ctx, at+int64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// feedbackGroups is the window groups of fs that read the feedback topic.
func feedbackGroups(fs *FeatureSpec) []*windowGroup {
	var groups []*windowGroup
	for _, g := range fs.groups {
		if g.source != SourceEvents {
			groups = append(groups, g)
		}
	}
	return groups
}
