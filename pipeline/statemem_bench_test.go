package pipeline

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
)

// stateSize is the window state of one run of statemem: its heap bytes, the entities
// (event-window keys and feedback keys) and the rows (events and labels) it holds.
type stateSize struct {
	bytes          float64
	entities, rows int
}

// statemem feeds days of the handbook's workload (5,000 customers, 10,000 terminals,
// 10,000 events a day and each event's label) through the handbook's window features and
// measures the state's heap once it has settled (a GC before and after).
func statemem(b *testing.B, days int) stateSize {
	s, fs := handbookSpec(b)
	recs, _, labels := genRecords(days*10_000, 5000, 10000, 8640*time.Millisecond, 0, rand.New(rand.NewPCG(3, 3)))
	d := NewDecoder(s)
	evs := make([]*Event, len(recs))
	for i := range recs {
		evs[i] = d.NewEvent()
		if err := d.Decode(recs[i].Value, recs[i].Timestamp, evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	feat := make([]float32, fs.Len())
	fb := &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(4, 4))}
	fb.init() // its copies of the labels are the input, not the state
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ws, err := newWindowState(fs, s, nil, fb, NewMetrics(nil), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	for i := range recs {
		if err := ws.features(context.Background(), &recs[i], evs[i], feat); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	var sz stateSize
	sz.bytes = float64(after.HeapAlloc) - float64(before.HeapAlloc)
	count := func(m *entityMap) {
		sz.entities += m.size()
		for _, s := range m.ints {
			sz.rows += len(s.t)
		}
		for _, s := range m.strs {
			sz.rows += len(s.t)
		}
	}
	for _, ps := range ws.parts {
		count(&ps.entities)
	}
	for i := range ws.fb.data {
		count(&ws.fb.data[i])
	}
	runtime.KeepAlive(ws)
	runtime.KeepAlive(evs) // the input stays alive across both measurements: only the state differs
	runtime.KeepAlive(recs)
	runtime.KeepAlive(labels)
	return sz
}

// BenchmarkWindowStateMemory is what the handbook's window state costs in memory: per row
// held (an event in a customer's windows or a label in a terminal's) and per entity (a
// key's series, map entry and slice headers), from two runs that hold the same entities
// and 10 and 20 days of rows (no window has expired a row yet: the longest is 30 days of
// events and 7+30 days of labels). State = entities × bytes/entity + rows × bytes/row,
// and rows per entity grow with its events per day times the window's days: the figures
// docs/performance.md quotes for growth per entity and per day of window.
func BenchmarkWindowStateMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		lo, hi := statemem(b, 10), statemem(b, 20)
		perRow := (hi.bytes - lo.bytes) / float64(hi.rows-lo.rows)
		b.ReportMetric(perRow, "bytes/row")
		b.ReportMetric((lo.bytes-perRow*float64(lo.rows))/float64(lo.entities), "bytes/entity")
		b.ReportMetric(float64(hi.entities), "entities")
		b.ReportMetric(float64(hi.rows)/20, "rows/day")
		b.ReportMetric(hi.bytes/(1<<20), "MiB@20days")
	}
}
