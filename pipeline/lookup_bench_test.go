package pipeline

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
)

// BenchmarkLookups is the cost per event of the five lookup columns of lookupSpec (two
// tables, about six versions per key), with the tables read: the watermark check of each
// table, and a binary search of the key's versions per column. ns/op is per event.
func BenchmarkLookups(b *testing.B) {
	f := genPIT(11, 50_000)
	s, fs := lookupSpec(b)
	ws, err := newWindowState(fs, s, nil, nil, NewMetrics(nil), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	if err := ws.addTables(map[string]FeedbackSource{
		"merchants": &memFeedback{recs: f.merchants, rng: rng},
		"customers": &memFeedback{recs: f.customers, rng: rng},
	}, nil); err != nil {
		b.Fatal(err)
	}
	dec := NewDecoder(s)
	evs := make([]*Event, len(f.events))
	for i := range f.events {
		evs[i] = dec.NewEvent()
		if err := dec.Decode(f.events[i].Value, f.events[i].Timestamp, evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	feat := make([]float32, fs.Len())
	ctx := context.Background()
	// Read the tables whole first: the loop measures the lookups, not the reading.
	if err := ws.lookups(ctx, evs[len(evs)-1], feat); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ws.lookups(ctx, evs[i%len(evs)], feat); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(fs.lookups)), "lookup_columns")
}

// BenchmarkTableRowMemory is the heap held per table version (two stored columns, 20,000
// keys of ten versions each), keys included: the figure docs/features.md quotes.
func BenchmarkTableRowMemory(b *testing.B) {
	_, fs := lookupSpec(b)
	tc := fs.Tables[0]
	const keys, per = 20_000, 10
	ev := NewDecoder(&tc.schema).NewEvent()
	r := &Record{}
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		st := newTableStore(tc, NewMetrics(nil).tables.of(tc.Name))
		st.slots = fs.lookups[:2] // MERCHANT_RISK_TIER and MERCHANT_CATEGORY
		for v := range per {
			for k := range keys {
				ev.Int[tc.key], ev.Present = int64(k), 1<<uint(tc.key)
				r.Offset++
				st.insert(ev, r, int64(v)*int64(time.Hour))
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(st.held), "bytes/row")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "bytes/key")
		runtime.KeepAlive(st)
	}
}
