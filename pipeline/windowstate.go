package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"go.uber.org/zap"
)

// History reads the past of an input partition, to rebuild window state when the operator
// meets a partition it has no state for (a start, a restart, a rebalance, a backfill from
// a timestamp). topics.History implements it.
type History interface {
	// Replay calls fn, in offset order, for every record of tp from the start of the log
	// up to end (exclusive).
	Replay(ctx context.Context, tp TopicPartition, end int64, fn func(*Record) error) error
}

// partState is the event-window state of one input partition.
type partState struct {
	last     int64 // offset of the last record applied
	maxT     int64 // newest event time applied
	entities entityMap
	applied  int
}

// windowState is the operator's feature state: event windows per input partition and the
// feedback table. It is used from the fetch loop only, except invalidate.
type windowState struct {
	spec    *FeatureSpec
	events  *windowGroup // at most one: event windows are keyed by the record key
	parts   map[TopicPartition]*partState
	history History
	fb      *feedbackTable
	dec     *Decoder // for history replays
	ev      *Event
	scratch []float32
	cur     []float64 // the stored fields of the event being scored
	gather  []float64 // rows of a series out of time order, in a window
	m       *Metrics
	log     *zap.Logger

	mu      sync.Mutex
	dropped []TopicPartition // partitions revoked since the last fetch

	newest map[TopicPartition]int64 // newest event time scored per partition (feedback and table expiry)

	tables []tableRef    // the reference tables lookups read (lookup.go)
	stores []*tableStore // by index into spec.Tables; nil: not read
}

func newWindowState(spec *FeatureSpec, schema *Schema, hist History, fbSrc FeedbackSource, m *Metrics, log *zap.Logger) (*windowState, error) {
	ws := &windowState{spec: spec, parts: map[TopicPartition]*partState{}, history: hist, m: m, log: log}
	ws.dec = NewDecoder(schema)
	ws.ev = ws.dec.NewEvent()
	ws.scratch = make([]float32, spec.Len())
	var fbGroups []*windowGroup
	for _, g := range spec.groups {
		if g.source == SourceEvents {
			ws.events = g
			ws.cur = make([]float64, 0, len(g.fields))
		} else {
			fbGroups = append(fbGroups, g)
		}
	}
	if len(fbGroups) > 0 {
		if fbSrc == nil {
			return nil, errors.New("operator: the feature spec has feedback windows but no feedback source is wired")
		}
		ws.fb = newFeedbackTable(spec.Feedback, fbGroups, fbSrc, m, log)
		ws.newest = map[TopicPartition]int64{}
		ws.fb.lowWater = ws.lowWater
	}
	return ws, nil
}

// invalidate forgets the state of partitions this instance no longer owns; their next
// owner (perhaps this instance again, later) rebuilds it from the log. Goroutine-safe.
func (ws *windowState) invalidate(tps []TopicPartition) {
	ws.mu.Lock()
	ws.dropped = append(ws.dropped, tps...)
	ws.mu.Unlock()
}

// feedbackWaited is the total time, in nanoseconds, events have waited for feedback.
func (ws *windowState) feedbackWaited() int64 {
	if ws == nil {
		return 0
	}
	var w int64
	if ws.fb != nil {
		w = ws.fb.waited
	}
	for _, tr := range ws.tables {
		w += tr.ft.waited
	}
	return w
}

// newFetch is called once per input fetch, before its records.
func (ws *windowState) newFetch() {
	if ws.fb != nil {
		ws.fb.newFetch()
	}
	for _, tr := range ws.tables {
		tr.ft.newFetch()
	}
	ws.applyInvalidations()
}

func (ws *windowState) applyInvalidations() {
	ws.mu.Lock()
	d := ws.dropped
	ws.dropped = nil
	ws.mu.Unlock()
	for _, tp := range d {
		delete(ws.parts, tp)
		delete(ws.newest, tp)
	}
}

// lowWater is the oldest of the partitions' newest event times: no partition scores
// events much older than its newest (its event windows are cut there too).
func (ws *windowState) lowWater() int64 {
	lw := int64(math.MinInt64)
	for _, t := range ws.newest {
		if lw == math.MinInt64 || t < lw {
			lw = t
		}
	}
	return lw
}

// features computes the window columns of ev (record r) into feat, then adds the event to
// its partition's state. It blocks while the feedback the event needs has not arrived.
func (ws *windowState) features(ctx context.Context, r *Record, ev *Event, feat []float32) error {
	tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
	var ps *partState
	if ws.events != nil {
		ps = ws.parts[tp]
		if ps == nil || r.Offset <= ps.last {
			// New to this instance, or fetched again (an aborted transaction): the state
			// must be exactly that of an uninterrupted run, so rebuild it from the log.
			var err error
			if ps, err = ws.rebuild(ctx, tp, r.Offset); err != nil {
				return err
			}
			ws.parts[tp] = ps
		}
	}
	if ws.newest != nil {
		t := ev.Time.UnixNano()
		if n, ok := ws.newest[tp]; !ok || t > n {
			ws.newest[tp] = t
		}
	}
	if len(ws.tables) > 0 {
		if err := ws.lookups(ctx, ev, feat); err != nil {
			return err
		}
	}
	if ws.fb != nil {
		t := ev.Time.UnixNano()
		if err := ws.fb.ensure(ctx, t); err != nil {
			return err
		}
		for _, g := range ws.fb.groups {
			ws.fb.compute(g, ev, feat)
		}
	}
	if ps != nil {
		g := ws.events
		s := ps.entities.get(ev, g.evKey, g.keyType, true)
		ws.computeEvents(ps, s, ev, feat)
		ws.add(ps, s, r.Offset, ev)
	}
	return nil
}

// computeEvents writes the event windows of ev, whose entity's series is s (without ev).
// Each span adds its rows in series order, then the event itself when the span holds it:
// the order of a scan of the series, so each feature is bit for bit that scan's.
func (ws *windowState) computeEvents(ps *partState, s *series, ev *Event, feat []float32) {
	g := ws.events
	t := ev.Time.UnixNano()
	cut := max(ps.maxT, t) - g.horizon // rows at or below are no longer visible, whatever the order
	var buf [64]acc
	a := g.accs(buf[:])
	cur := ws.cur[:0]
	for _, f := range g.fields {
		cur = append(cur, ev.Num[f])
	}
	for si := range g.spans {
		sp := &g.spans[si]
		hi := t - sp.delay
		lo := max(hi-sp.length, cut)
		if s.sorted() {
			g.addRange(a, si, s, lo, hi)
		} else {
			ws.gather = g.addScan(a, si, s, lo, hi, ws.gather)
		}
		if sp.current {
			g.addRows(a, si, cur, 1)
		}
	}
	g.results(a, feat)
}

// add appends the event to its entity's series s. Rows that expire (at or below the
// partition's newest time less the horizon: no later event reads them) stay until the
// series is full; they then make room in place, if there are enough of them to pay for
// the move, and append grows the series otherwise. The sweeps drop the rest.
func (ws *windowState) add(ps *partState, s *series, offset int64, ev *Event) {
	g := ws.events
	t := ev.Time.UnixNano()
	stride := len(g.fields)
	ps.maxT = max(ps.maxT, t)
	cut := ps.maxT - g.horizon
	if len(s.t) == cap(s.t) {
		if n := s.expired(cut); n > 0 && n >= len(s.t)/4 {
			s.compact(n, stride)
		}
	}
	s.appendRow(t, ev, g.fields)
	s.maxT = max(s.maxT, t)
	ps.last = offset
	ps.applied++
	if ps.applied%8192 == 0 {
		ps.entities.sweep(cut, stride)
		n := 0
		for _, p := range ws.parts {
			n += p.entities.size()
		}
		ws.m.stateEntities.Set(float64(n))
	}
}

// rebuild replays tp from the start of its log up to end through the decoder and the
// stateless features, adding every event that would have been scored, exactly as an
// uninterrupted run would have.
func (ws *windowState) rebuild(ctx context.Context, tp TopicPartition, end int64) (*partState, error) {
	ps := &partState{last: -1, maxT: math.MinInt64, entities: newEntityMap()}
	if ws.history == nil {
		ps.last = end - 1
		return ps, nil
	}
	start := time.Now()
	n := 0
	err := retry(ctx, ws.log, fmt.Sprintf("rebuilding window state of %s/%d", tp.Topic, tp.Partition), func() error {
		ps = &partState{last: -1, maxT: math.MinInt64, entities: newEntityMap()}
		n = 0
		return ws.replay(ctx, tp, end, ps, &n)
	})
	if err != nil {
		return nil, err
	}
	ps.last = end - 1
	d := time.Since(start)
	ws.m.stateRebuilds.Inc()
	ws.m.stateRebuildSeconds.Add(d.Seconds())
	ws.log.Info("rebuilt window state from the log", zap.String("topic", tp.Topic), zap.Int32("partition", tp.Partition),
		zap.Int64("up_to_offset", end), zap.Int("events", n), zap.Int("entities", ps.entities.size()), zap.Duration("took", d))
	return ps, nil
}

// replay reads tp's history into ps.
func (ws *windowState) replay(ctx context.Context, tp TopicPartition, end int64, ps *partState, n *int) error {
	err := ws.history.Replay(ctx, tp, end, func(r *Record) error {
		if r.Offset <= ps.last {
			return nil
		}
		if decodeRecord(ws.dec, ws.spec, r, ws.ev, ws.scratch) != nil {
			ps.last = r.Offset
			return nil // dead-lettered when it was first read: not part of any window
		}
		g := ws.events
		ws.add(ps, ps.entities.get(ws.ev, g.evKey, g.keyType, true), r.Offset, ws.ev)
		*n++
		return nil
	})
	return err
}
