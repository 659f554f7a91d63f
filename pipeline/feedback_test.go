package pipeline

// The feedback join's tests: the labels table, idle labels partitions, reloads for old
// events. The shared fixtures (handbookSpec, runFeatures, bruteForce) are in window_test.go.

import (
	"context"
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
)

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
