package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/record"
)

// History reads the past of an input partition, to rebuild window state when the operator
// meets a partition it has no state for (a start, a restart, a rebalance, a backfill from
// a timestamp). topics.History implements it.
type History interface {
	// Replay calls fn, in offset order, for every record of tp from the start of the log
	// up to end (exclusive).
	Replay(ctx context.Context, tp TopicPartition, end int64, fn func(*Record) error) error
}

// FeedbackSource reads every partition of the feedback topic, outside any group, from the
// start of the log. topics.Feedback implements it. Not safe for concurrent use.
type FeedbackSource interface {
	// Partitions lists the partitions of the feedback topic.
	Partitions() []int32
	// Poll returns the next records, in offset order within each partition, and the
	// partitions a bounded source has finished. It waits until there is something or ctx
	// ends (then ctx.Err()). A bounded source returns io.EOF once every partition ended.
	Poll(ctx context.Context) (FeedbackPoll, error)
	// CaughtUp asks the broker, now, which partitions have nothing beyond what Poll has
	// returned.
	CaughtUp(ctx context.Context) (map[int32]bool, error)
	// Rewind starts every partition again from the start of its log.
	Rewind(ctx context.Context) error
}

// FeedbackPoll and FeedbackProgress are defined in package record.
type (
	FeedbackPoll     = record.FeedbackPoll
	FeedbackProgress = record.FeedbackProgress
)

// series is one entity's rows: times (unix ns) and the group's stored values, with
// stride len(group.fields). Event series are in log order; feedback series are kept in
// (time, partition, offset) order, so that sums never depend on arrival interleaving.
type series struct {
	t    []int64
	v    []float64
	p    []int32 // feedback only
	o    []int64 // feedback only
	maxT int64
}

func (s *series) len() int { return len(s.t) }

// dropFront removes the first n rows.
func (s *series) dropFront(n, stride int) {
	if n <= 0 {
		return
	}
	s.t = s.t[n:]
	s.v = s.v[n*stride:]
	if s.p != nil {
		s.p, s.o = s.p[n:], s.o[n:]
	}
	// Give the memory back once the dead prefix dominates.
	if cap(s.t) > 64 && len(s.t) < cap(s.t)/4 {
		s.t = append([]int64(nil), s.t...)
		s.v = append([]float64(nil), s.v...)
		if s.p != nil {
			s.p, s.o = append([]int32(nil), s.p...), append([]int64(nil), s.o...)
		}
	}
}

// entityMap holds the series of one group, by int or by string key.
type entityMap struct {
	ints map[int64]*series
	strs map[string]*series
}

func newEntityMap() entityMap {
	return entityMap{ints: map[int64]*series{}, strs: map[string]*series{}}
}

func (m *entityMap) get(ev *Event, field int, typ FieldType, create bool) *series {
	if typ == TypeString {
		s := m.strs[ev.Str[field]]
		if s == nil && create {
			s = &series{maxT: math.MinInt64}
			m.strs[ev.Str[field]] = s
		}
		return s
	}
	s := m.ints[ev.Int[field]]
	if s == nil && create {
		s = &series{maxT: math.MinInt64}
		m.ints[ev.Int[field]] = s
	}
	return s
}

func (m *entityMap) size() int { return len(m.ints) + len(m.strs) }

// sweep drops rows at or below cut and forgets entities left empty.
func (m *entityMap) sweep(cut int64, stride int) {
	trim := func(s *series) bool {
		if s.maxT <= cut {
			return true
		}
		n := 0
		for n < len(s.t) && s.t[n] <= cut {
			n++
		}
		s.dropFront(n, stride)
		return false
	}
	for k, s := range m.ints {
		if trim(s) {
			delete(m.ints, k)
		}
	}
	for k, s := range m.strs {
		if trim(s) {
			delete(m.strs, k)
		}
	}
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
	vals    []float64
	m       *Metrics
	log     *zap.Logger

	mu      sync.Mutex
	dropped []TopicPartition // partitions revoked since the last fetch

	newest map[TopicPartition]int64 // newest event time scored per partition (feedback expiry)
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

// newFetch is called once per input fetch, before its records.
func (ws *windowState) newFetch() {
	if ws.fb != nil {
		ws.fb.newFetch()
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
	if ws.fb != nil {
		t := ev.Time.UnixNano()
		if n, ok := ws.newest[tp]; !ok || t > n {
			ws.newest[tp] = t
		}
		if err := ws.fb.ensure(ctx, t); err != nil {
			return err
		}
		for _, g := range ws.fb.groups {
			ws.fb.compute(g, ev, feat)
		}
	}
	if ps != nil {
		ws.computeEvents(ps, ev, feat)
		ws.add(ps, r.Offset, ev)
	}
	return nil
}

func (ws *windowState) computeEvents(ps *partState, ev *Event, feat []float32) {
	g := ws.events
	t := ev.Time.UnixNano()
	maxT := max(ps.maxT, t)
	cut := maxT - g.horizon // rows at or below are no longer visible, whatever the order
	stride := len(g.fields)
	var buf [64]acc
	a := g.accs(buf[:])
	if s := ps.entities.get(ev, g.evKey, g.keyType, false); s != nil {
		for i, ti := range s.t {
			if ti <= cut {
				continue
			}
			g.addRow(a, t, ti, s.v[i*stride:(i+1)*stride])
		}
	}
	for si, sp := range g.spans {
		if sp.current {
			for j, f := range g.fields {
				a[si*(stride+1)+1+j].add(ev.Num[f])
			}
			a[si*(stride+1)].n++
		}
	}
	g.results(a, feat)
}

// accs returns zeroed accumulators: per span, the row count then one per stored field.
func (g *windowGroup) accs(buf []acc) []acc {
	n := len(g.spans) * (len(g.fields) + 1)
	if n > len(buf) {
		return make([]acc, n)
	}
	a := buf[:n]
	clear(a)
	return a
}

// addRow adds one row at time ti to every span of an event at t that holds it.
func (g *windowGroup) addRow(a []acc, t, ti int64, row []float64) {
	stride := len(g.fields) + 1
	for si := range g.spans {
		sp := &g.spans[si]
		hi := t - sp.delay
		if ti > hi-sp.length && ti <= hi {
			base := si * stride
			a[base].n++
			for j, x := range row {
				a[base+1+j].add(x)
			}
		}
	}
}

// results writes every window's value from the span accumulators.
func (g *windowGroup) results(a []acc, feat []float32) {
	stride := len(g.fields) + 1
	for j := range g.windows {
		w := &g.windows[j]
		base := w.span * stride
		if w.val < 0 {
			feat[w.col] = float32(w.result(&a[base]))
		} else {
			feat[w.col] = float32(w.result(&a[base+1+w.val]))
		}
	}
}

// add appends the event to its entity's series.
func (ws *windowState) add(ps *partState, offset int64, ev *Event) {
	g := ws.events
	t := ev.Time.UnixNano()
	s := ps.entities.get(ev, g.evKey, g.keyType, true)
	stride := len(g.fields)
	if t > ps.maxT {
		ps.maxT = t
	}
	cut := ps.maxT - g.horizon
	n := 0
	for n < len(s.t) && s.t[n] <= cut {
		n++
	}
	s.dropFront(n, stride)
	s.t = append(s.t, t)
	for _, f := range g.fields {
		s.v = append(s.v, ev.Num[f])
	}
	if t > s.maxT {
		s.maxT = t
	}
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
	for attempt := 0; ; attempt++ {
		ps = &partState{last: -1, maxT: math.MinInt64, entities: newEntityMap()}
		n = 0
		err := ws.replay(ctx, tp, end, ps, &n)
		if err == nil {
			break
		}
		if err := backoff(ctx, ws.log, attempt, fmt.Sprintf("rebuilding window state of %s/%d", tp.Topic, tp.Partition), err); err != nil {
			return nil, err
		}
	}
	ps.last = end - 1
	d := time.Since(start)
	ws.m.stateRebuilds.Inc()
	ws.m.stateRebuildSeconds.Add(d.Seconds())
	ws.log.Info("rebuilt window state from the log", zap.String("topic", tp.Topic), zap.Int32("partition", tp.Partition),
		zap.Int64("up_to_offset", end), zap.Int("events", n), zap.Int("entities", ps.entities.size()), zap.Duration("took", d))
	return ps, nil
}

// backoff logs a failed attempt at something that needs the broker and waits before the
// next (100ms doubling to 5s); it returns ctx's error if ctx ends first. A broker outage
// makes events wait, not the operator fail.
func backoff(ctx context.Context, log *zap.Logger, attempt int, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d := min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
	log.Warn(what+" failed; retrying", zap.Error(err), zap.Int("attempt", attempt+1), zap.Duration("in", d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// replay reads tp's history into ps.
func (ws *windowState) replay(ctx context.Context, tp TopicPartition, end int64, ps *partState, n *int) error {
	err := ws.history.Replay(ctx, tp, end, func(r *Record) error {
		if r.Offset <= ps.last {
			return nil
		}
		if ws.dec.CheckKey(r.Key) != nil || ws.dec.Decode(r.Value, r.Timestamp, ws.ev) != nil ||
			ws.dec.CheckKeyField(r.Key, ws.ev) != nil || ws.spec.Extract(ws.ev, ws.scratch) != nil {
			ps.last = r.Offset
			return nil // dead-lettered when it was first read: not part of any window
		}
		ws.add(ps, r.Offset, ws.ev)
		*n++
		return nil
	})
	return err
}

// lateness is how much older than its partition's newest event an event may be and still
// find the feedback rows it needs in the table (older ones reload it).
const lateness = int64(24 * time.Hour)

// fbPart is one feedback partition's progress.
type fbPart struct {
	maxT  int64 // newest record time seen
	ended bool  // a bounded source finished it
	idle  bool  // caught up and silent past the idle timeout: events do not wait for it
}

// feedbackTable is the feedback topic as a table, joined by event time: an event at t sees
// the feedback rows with times in its windows, which all end at or before t − minDelay,
// and only once every feedback partition has passed that time (records of a partition are
// in time order), so what it sees depends on the log, never on arrival timing.
type feedbackTable struct {
	cfg       *FeedbackConfig
	groups    []*windowGroup
	src       FeedbackSource
	dec       *Decoder
	ev        *Event
	data      []entityMap
	parts     map[int32]*fbPart
	maxSeen   int64
	dropBelow int64 // rows at or below may be gone
	retention int64 // hard cap behind the newest row; 0: none
	// lowWater is the oldest event time that an input partition this operator reads may
	// still score (math.MinInt64 while unknown): rows older than it minus the horizon
	// are no longer needed.
	lowWater  func() int64
	horizon   int64
	minDelay  int64
	eof       bool
	sinceGC   int
	confirmed bool // the idle partitions were checked against the broker since the last input fetch
	m         *Metrics
	log       *zap.Logger
}

func newFeedbackTable(cfg *FeedbackConfig, groups []*windowGroup, src FeedbackSource, m *Metrics, log *zap.Logger) *feedbackTable {
	ft := &feedbackTable{cfg: cfg, groups: groups, src: src, m: m, log: log, minDelay: math.MaxInt64}
	ft.dec = NewDecoder(&cfg.Schema)
	ft.ev = ft.dec.NewEvent()
	for _, g := range groups {
		ft.horizon = max(ft.horizon, g.horizon)
		ft.minDelay = min(ft.minDelay, g.minDelay)
	}
	ft.retention = int64(cfg.Retention)
	ft.lowWater = func() int64 { return math.MinInt64 }
	ft.reset()
	return ft
}

func (ft *feedbackTable) reset() {
	ft.data = make([]entityMap, len(ft.groups))
	for i := range ft.data {
		ft.data[i] = newEntityMap()
	}
	ft.parts = map[int32]*fbPart{}
	for _, p := range ft.src.Partitions() {
		ft.parts[p] = &fbPart{maxT: math.MinInt64}
	}
	ft.maxSeen, ft.dropBelow, ft.eof = math.MinInt64, math.MinInt64, false
}

// complete reports whether every feedback row with time <= need has been read: each
// partition has passed need, or ended, or is idle.
func (ft *feedbackTable) complete(need int64) bool {
	for _, p := range ft.parts {
		if !p.ended && !p.idle && p.maxT <= need {
			return false
		}
	}
	return true
}

// reliesOnIdle reports whether an idle partition is what makes need complete.
func (ft *feedbackTable) reliesOnIdle(need int64) bool {
	for _, p := range ft.parts {
		if p.idle && !p.ended && p.maxT <= need {
			return true
		}
	}
	return false
}

// newFetch is called for every input fetch: idle partitions are confirmed against the
// broker again before the first event of the fetch relies on them, so feedback written
// before those events is read first.
func (ft *feedbackTable) newFetch() { ft.confirmed = false }

// confirmIdle asks the broker whether the idle partitions are still caught up, and takes
// those that are not back into the join.
func (ft *feedbackTable) confirmIdle(ctx context.Context) error {
	var caught map[int32]bool
	for attempt := 0; ; attempt++ {
		var err error
		if caught, err = ft.src.CaughtUp(ctx); err == nil {
			break
		}
		if err := backoff(ctx, ft.log, attempt, "checking the feedback topic's end offsets", err); err != nil {
			return err
		}
	}
	for id, p := range ft.parts {
		if p.idle && !caught[id] {
			p.idle = false
		}
	}
	ft.confirmed = true
	return nil
}

// ensure reads feedback until the table holds every row that an event at t can see.
func (ft *feedbackTable) ensure(ctx context.Context, t int64) error {
	need := t - ft.minDelay
	if t-ft.horizon <= ft.dropBelow {
		// The event is older than what the table still holds (a lagging partition, or a
		// replay): read the feedback again from the start.
		ft.log.Info("feedback table does not reach back far enough; reloading it from the start of the topic",
			zap.Time("event_time", time.Unix(0, t).UTC()), zap.Time("held_from", time.Unix(0, ft.dropBelow).UTC()))
		ft.m.feedbackReloads.Inc()
		for attempt := 0; ; attempt++ {
			err := ft.src.Rewind(ctx)
			if err == nil {
				break
			}
			if err := backoff(ctx, ft.log, attempt, "rewinding the feedback topic", err); err != nil {
				return err
			}
		}
		ft.reset()
	}
	if ft.complete(need) && (ft.confirmed || !ft.reliesOnIdle(need)) {
		return nil
	}
	if ft.reliesOnIdle(need) && !ft.confirmed {
		if err := ft.confirmIdle(ctx); err != nil {
			return err
		}
		if ft.complete(need) {
			return nil
		}
	}
	idleAfter := ft.cfg.IdleTimeout
	if idleAfter <= 0 {
		idleAfter = time.Second
	}
	waitStart := time.Now()
	defer func() { ft.m.feedbackWait.Observe(time.Since(waitStart).Seconds()) }()
	progress := waitStart // last time a partition that holds the event back delivered
	for !ft.complete(need) && !ft.eof {
		wait := idleAfter - time.Since(progress)
		if wait <= 0 {
			// The partitions holding the event back have been silent for the idle
			// timeout: those the broker says are caught up stop holding events back.
			caught, err := ft.src.CaughtUp(ctx)
			if err != nil {
				if err := backoff(ctx, ft.log, 0, "checking the feedback topic's end offsets", err); err != nil {
					return err
				}
				continue
			}
			for id, p := range ft.parts {
				if !p.ended && !p.idle && p.maxT <= need && caught[id] {
					p.idle = true
					ft.m.feedbackIdle.Inc()
					ft.log.Warn("feedback partition is caught up and silent: events no longer wait for it until it delivers again",
						zap.Int32("partition", id), zap.Time("needed_past", time.Unix(0, need).UTC()), zap.Duration("idle_timeout", idleAfter))
				}
			}
			ft.confirmed = true
			progress = time.Now()
			continue
		}
		before := ft.blocking(need)
		pctx, cancel := context.WithTimeout(ctx, wait)
		poll, err := ft.src.Poll(pctx)
		cancel()
		ft.apply(poll)
		if ft.blocking(need) < before || len(poll.Records) > 0 && before > 0 && ft.deliveredTo(poll, need) {
			progress = time.Now()
		}
		switch {
		case errors.Is(err, io.EOF):
			ft.eof = true
			for _, p := range ft.parts {
				p.ended = true
			}
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			if err := backoff(ctx, ft.log, 0, "reading the feedback topic", err); err != nil {
				return err
			}
		}
	}
	return nil
}

// blocking counts the partitions that hold an event needing need back.
func (ft *feedbackTable) blocking(need int64) int {
	n := 0
	for _, p := range ft.parts {
		if !p.ended && !p.idle && p.maxT <= need {
			n++
		}
	}
	return n
}

// deliveredTo reports whether poll brought records of a partition still holding need back.
func (ft *feedbackTable) deliveredTo(poll FeedbackPoll, need int64) bool {
	for i := range poll.Records {
		if p := ft.parts[poll.Records[i].Partition]; p != nil && p.maxT <= need {
			return true
		}
	}
	return false
}

func (ft *feedbackTable) apply(poll FeedbackPoll) {
	for i := range poll.Records {
		r := &poll.Records[i]
		p := ft.parts[r.Partition]
		if p == nil {
			p = &fbPart{maxT: math.MinInt64}
			ft.parts[r.Partition] = p
		}
		p.idle = false
		if err := ft.dec.Decode(r.Value, r.Timestamp, ft.ev); err != nil {
			var de *DecodeError
			class := ClassInvalidJSON
			if errors.As(err, &de) {
				class = de.Class
			}
			ft.m.feedbackRejected.WithLabelValues(string(class)).Inc()
			ft.log.Warn("skipping a feedback record that does not decode", zap.String("topic", r.Topic),
				zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset), zap.Error(err))
			continue
		}
		t := ft.ev.Time.UnixNano()
		if t < p.maxT {
			ft.m.feedbackLate.Inc() // out of order within its partition: may have been missed
		}
		p.maxT = max(p.maxT, t)
		ft.maxSeen = max(ft.maxSeen, t)
		for gi, g := range ft.groups {
			ft.insert(&ft.data[gi], g, r, t)
		}
		ft.m.feedbackRecords.Inc()
		ft.sinceGC++
	}
	for _, pr := range poll.Progress {
		p := ft.parts[pr.Partition]
		if p == nil {
			p = &fbPart{maxT: math.MinInt64}
			ft.parts[pr.Partition] = p
		}
		if pr.Ended {
			p.ended = true
		}
	}
	// Rows go once no input partition can need them any more (each partition's newest
	// event minus the longest window), or, with a retention cap, once they are that far
	// behind the newest row (an event older than that reloads the table).
	if lw := ft.lowWater(); lw != math.MinInt64 && lw-ft.horizon-lateness > ft.dropBelow {
		ft.dropBelow = lw - ft.horizon - lateness
	}
	if ft.retention > 0 && ft.maxSeen != math.MinInt64 {
		if cut := ft.maxSeen - ft.retention; cut > ft.dropBelow {
			ft.dropBelow = cut
		}
	}
	if ft.sinceGC >= 1<<16 {
		ft.sinceGC = 0
		n := 0
		for gi, g := range ft.groups {
			ft.data[gi].sweep(ft.dropBelow, len(g.fields))
			n += ft.data[gi].size()
		}
		ft.m.feedbackEntities.Set(float64(n))
	}
}

// insert adds a feedback row in (time, partition, offset) order.
func (ft *feedbackTable) insert(m *entityMap, g *windowGroup, r *Record, t int64) {
	s := m.get(ft.ev, g.fbKey, g.keyType, true)
	if s.p == nil {
		s.p, s.o = []int32{}, []int64{}
	}
	stride := len(g.fields)
	i := len(s.t)
	for i > 0 && (s.t[i-1] > t || (s.t[i-1] == t && (s.p[i-1] > r.Partition || (s.p[i-1] == r.Partition && s.o[i-1] > r.Offset)))) {
		i--
	}
	s.t = append(s.t, 0)
	copy(s.t[i+1:], s.t[i:])
	s.t[i] = t
	s.p = append(s.p, 0)
	copy(s.p[i+1:], s.p[i:])
	s.p[i] = r.Partition
	s.o = append(s.o, 0)
	copy(s.o[i+1:], s.o[i:])
	s.o[i] = r.Offset
	s.v = append(s.v, make([]float64, stride)...)
	copy(s.v[(i+1)*stride:], s.v[i*stride:])
	for j, f := range g.fields {
		s.v[i*stride+j] = ft.ev.Num[f]
	}
	s.maxT = max(s.maxT, t)
}

// compute writes the feedback windows of group g for the event ev.
func (ft *feedbackTable) compute(g *windowGroup, ev *Event, feat []float32) {
	var gi int
	for i, x := range ft.groups {
		if x == g {
			gi = i
		}
	}
	t := ev.Time.UnixNano()
	var buf [64]acc
	a := g.accs(buf[:])
	if s := ft.data[gi].get(ev, g.evKey, g.keyType, false); s != nil {
		lo := t - g.horizon
		stride := len(g.fields)
		i := sort.Search(len(s.t), func(i int) bool { return s.t[i] > lo })
		hiAll := t - g.minDelay
		for ; i < len(s.t) && s.t[i] <= hiAll; i++ {
			g.addRow(a, t, s.t[i], s.v[i*stride:(i+1)*stride])
		}
	}
	g.results(a, feat)
}
