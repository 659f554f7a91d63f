package pipeline

import (
	"context"
	"errors"
	"io"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/record"
)

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

// FeedbackPoll is one Poll's result (defined in package record, for topics).
type FeedbackPoll = record.FeedbackPoll

// FeedbackProgress says a bounded source has read a whole partition (package record).
type FeedbackProgress = record.FeedbackProgress

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
	cfg     *FeedbackConfig
	groups  []*windowGroup
	src     FeedbackSource
	dec     *Decoder
	ev      *Event
	data    []entityMap
	parts   map[int32]*fbPart
	maxSeen int64
	// blockT and idleT are the oldest newest-record time among the partitions that hold
	// events back (neither ended nor idle) and among the idle ones (math.MaxInt64: none):
	// the per-event check in ensure is then two comparisons, whatever the number of
	// partitions. refresh recomputes them whenever a partition changes.
	blockT, idleT int64
	dropBelow     int64 // rows at or below may be gone
	retention     int64 // hard cap behind the newest row; 0: none
	// lowWater is the oldest event time that an input partition this operator reads may
	// still score (math.MinInt64 while unknown): rows older than it minus the horizon
	// are no longer needed.
	lowWater  func() int64
	horizon   int64
	minDelay  int64
	eof       bool
	sinceGC   int
	confirmed bool // the idle partitions were checked against the broker since the last input fetch
	failed    int  // broker calls of the wait loop that failed in a row (see retryWait)
	// pin caps dropBelow while ensure waits for an event (math.MaxInt64: none): the polls
	// of that wait may raise the cut, and a sweep among them must not drop the rows the
	// waiting event needs (its need was checked against the cut before the wait).
	pin    int64
	waited int64 // nanoseconds spent in ensure beyond its fast path (the feedback_wait stage)
	m      *Metrics
	log    *zap.Logger
	// store, when set, makes this a reference table (lookup.go): rows go to it instead
	// of the window groups, and rows that fail validation are dead-lettered.
	store *tableStore
}

func newFeedbackTable(cfg *FeedbackConfig, groups []*windowGroup, src FeedbackSource, m *Metrics, log *zap.Logger) *feedbackTable {
	ft := &feedbackTable{cfg: cfg, groups: groups, src: src, m: m, log: log, minDelay: math.MaxInt64, pin: math.MaxInt64}
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
	if ft.store != nil {
		ft.store.reset()
	}
	ft.refresh()
}

// refresh recomputes blockT and idleT from the partitions.
func (ft *feedbackTable) refresh() {
	ft.blockT, ft.idleT = math.MaxInt64, math.MaxInt64
	for _, p := range ft.parts {
		switch {
		case p.ended:
		case p.idle:
			ft.idleT = min(ft.idleT, p.maxT)
		default:
			ft.blockT = min(ft.blockT, p.maxT)
		}
	}
}

// complete reports whether every feedback row with time <= need has been read: each
// partition has passed need, or ended, or is idle.
func (ft *feedbackTable) complete(need int64) bool { return need < ft.blockT }

// reliesOnIdle reports whether an idle partition is what makes need complete.
func (ft *feedbackTable) reliesOnIdle(need int64) bool { return ft.idleT <= need }

// newFetch is called for every input fetch: idle partitions are confirmed against the
// broker again before the first event of the fetch relies on them, so feedback written
// before those events is read first. The high watermark of the feedback consumer's last
// fetch response cannot stand in for this round trip: that response may have left the
// broker before the input events were appended, so a label written just before them
// would be missed live and seen by a backfill. Only a request sent after the input fetch
// returned proves it; its cost shows as the feedback_wait stage (streamscore_stage_seconds).
func (ft *feedbackTable) newFetch() { ft.confirmed = false }

// confirmIdle asks the broker whether the idle partitions are still caught up, and takes
// those that are not back into the join.
func (ft *feedbackTable) confirmIdle(ctx context.Context) error {
	var caught map[int32]bool
	err := retry(ctx, ft.log, "checking the feedback topic's end offsets", func() (err error) {
		caught, err = ft.src.CaughtUp(ctx)
		return err
	})
	if err != nil {
		return err
	}
	for id, p := range ft.parts {
		if p.idle && !caught[id] {
			p.idle = false
		}
	}
	ft.refresh()
	ft.confirmed = true
	return nil
}

// ensure reads feedback until the table holds every row that an event at t can see. The
// time it spends when the table is not ready at once is added to waited.
func (ft *feedbackTable) ensure(ctx context.Context, t int64) error {
	need := t - ft.minDelay
	if t-ft.horizon > ft.dropBelow && ft.complete(need) && (ft.confirmed || !ft.reliesOnIdle(need)) {
		return nil // the common case: no clock read
	}
	start := mono()
	ft.pin = t - ft.horizon - 1 // rows at or below t−horizon are outside every window of t
	defer func() { ft.waited += mono() - start; ft.pin = math.MaxInt64 }()
	if t-ft.horizon <= ft.dropBelow {
		if err := ft.reload(ctx, t); err != nil {
			return err
		}
	}
	if ready, err := ft.readyNow(ctx, need); ready || err != nil {
		return err
	}
	return ft.wait(ctx, need)
}

// reload reads the feedback again from the start of the topic, for an event older than
// what the table still holds (a lagging partition, or a replay).
func (ft *feedbackTable) reload(ctx context.Context, t int64) error {
	ft.log.Info("feedback table does not reach back far enough; reloading it from the start of the topic",
		zap.Time("event_time", time.Unix(0, t).UTC()), zap.Time("held_from", time.Unix(0, ft.dropBelow).UTC()))
	ft.m.feedbackReloads.Inc()
	if err := retry(ctx, ft.log, "rewinding the feedback topic", func() error { return ft.src.Rewind(ctx) }); err != nil {
		return err
	}
	ft.reset()
	return nil
}

// readyNow reports whether the table already holds every row up to need, without reading
// the topic; idle partitions are confirmed against the broker first when need relies on
// them.
func (ft *feedbackTable) readyNow(ctx context.Context, need int64) (bool, error) {
	if ft.complete(need) && (ft.confirmed || !ft.reliesOnIdle(need)) {
		return true, nil
	}
	if ft.reliesOnIdle(need) && !ft.confirmed {
		if err := ft.confirmIdle(ctx); err != nil {
			return false, err
		}
		if ft.complete(need) {
			return true, nil
		}
	}
	return false, nil
}

// wait polls the feedback topic until every row up to need has been read, marking idle
// the partitions that hold it back while caught up and silent for the idle timeout.
func (ft *feedbackTable) wait(ctx context.Context, need int64) error {
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
			checked, err := ft.markIdle(ctx, need, idleAfter)
			if err != nil {
				return err
			}
			if checked {
				progress = time.Now()
			}
			continue
		}
		progressed, err := ft.pollOnce(ctx, need, wait)
		if progressed {
			progress = time.Now()
		}
		if err := ft.pollFailed(ctx, err); err != nil {
			return err
		}
	}
	return nil
}

// markIdle runs once the partitions holding need back have been silent for the idle
// timeout: those the broker says are caught up stop holding events back. It reports false
// when the broker could not be asked (after a backoff, so the caller asks again).
func (ft *feedbackTable) markIdle(ctx context.Context, need int64, idleAfter time.Duration) (bool, error) {
	caught, err := ft.src.CaughtUp(ctx)
	if err != nil {
		return false, ft.retryWait(ctx, "checking the feedback topic's end offsets", err)
	}
	ft.failed = 0
	for id, p := range ft.parts {
		if !p.ended && !p.idle && p.maxT <= need && caught[id] {
			p.idle = true
			ft.m.feedbackIdle.Inc()
			ft.log.Warn("feedback partition is caught up and silent: events no longer wait for it until it delivers again",
				zap.Int32("partition", id), zap.Time("needed_past", time.Unix(0, need).UTC()), zap.Duration("idle_timeout", idleAfter))
		}
	}
	ft.refresh()
	ft.confirmed = true
	return true, nil
}

// pollOnce polls the feedback topic for at most wait and applies what came. It reports
// whether a partition holding need back made progress, and the poll's error.
func (ft *feedbackTable) pollOnce(ctx context.Context, need int64, wait time.Duration) (progressed bool, err error) {
	before := ft.blocking(need)
	pctx, cancel := context.WithTimeout(ctx, wait)
	poll, err := ft.src.Poll(pctx)
	cancel()
	ft.apply(poll)
	progressed = ft.blocking(need) < before || len(poll.Records) > 0 && before > 0 && ft.deliveredTo(poll, need)
	return progressed, err
}

// pollFailed handles a poll's error: the end of a bounded topic ends every partition; a
// poll that timed out is no failure; anything else backs off. It returns an error only
// when ctx ends.
func (ft *feedbackTable) pollFailed(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, io.EOF):
		ft.eof = true
		for _, p := range ft.parts {
			p.ended = true
		}
		ft.refresh()
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil && !errors.Is(err, context.DeadlineExceeded):
		return ft.retryWait(ctx, "reading the feedback topic", err)
	default:
		ft.failed = 0
	}
	return nil
}

// retryWait backs off after a failed broker call of the wait loop: 100 ms, doubling with
// each failure in a row up to 800 ms. During a broker failover the loop then asks about
// once a second rather than ten times (and logs as often), and still notices the new
// leader within a second of its election.
func (ft *feedbackTable) retryWait(ctx context.Context, what string, err error) error {
	ft.failed++
	return backoff(ctx, ft.log, min(ft.failed-1, 3), what, err)
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
			ft.reject(r, err)
			continue
		}
		t := ft.ev.Time.UnixNano()
		if t < p.maxT {
			ft.m.feedbackLate.Inc() // out of order within its partition: may have been missed
		}
		p.maxT = max(p.maxT, t)
		ft.maxSeen = max(ft.maxSeen, t)
		ft.add(r, t)
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
	ft.refresh()
	// Rows go once no input partition can need them any more (each partition's newest
	// event minus the longest window), or, with a retention cap, once they are that far
	// behind the newest row (an event older than that reloads the table).
	// Never past the pin of an event being waited for.
	if lw := ft.lowWater(); lw != math.MinInt64 {
		if cut := min(lw-ft.horizon-lateness, ft.pin); cut > ft.dropBelow {
			ft.dropBelow = cut
		}
	}
	if ft.retention > 0 && ft.maxSeen != math.MinInt64 {
		if cut := min(ft.maxSeen-ft.retention, ft.pin); cut > ft.dropBelow {
			ft.dropBelow = cut
		}
	}
	if ft.store != nil {
		ft.store.m.rows.Set(float64(ft.store.held))
		if ft.sinceGC >= 1<<16 {
			ft.sinceGC = 0
			ft.store.sweep(ft.dropBelow) // a table's gauge is its rows held, not the feedback entities
		}
		return
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

// reject handles a record that does not decode: a table dead-letters it (tableStore.bad);
// the feedback table skips it, counted by class.
func (ft *feedbackTable) reject(r *Record, err error) {
	de, ok := errors.AsType[*DecodeError](err)
	if !ok {
		de = &DecodeError{Class: ClassInvalidJSON, Msg: err.Error()}
	}
	if ft.store != nil {
		ft.store.bad(r, de)
		return
	}
	ft.m.feedbackRejected.WithLabelValues(string(de.Class)).Inc()
	ft.log.Warn("skipping a feedback record that does not decode", zap.String("topic", r.Topic),
		zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset), zap.Error(err))
}

// add puts a decoded row (time t) into the window groups, or into the table's versions.
func (ft *feedbackTable) add(r *Record, t int64) {
	for gi, g := range ft.groups {
		ft.insert(&ft.data[gi], g, r, t)
	}
	if ft.store != nil {
		ft.store.insert(ft.ev, r, t)
		return
	}
	ft.m.feedbackRecords.Inc()
}

// insert adds a feedback row in (time, partition, offset) order.
func (ft *feedbackTable) insert(m *entityMap, g *windowGroup, r *Record, t int64) {
	s := m.get(ft.ev, g.fbKey, g.keyType, true)
	stride := len(g.fields)
	if cap(s.t) == 0 {
		// Room for a few rows at once: most keys get more than one.
		s.t, s.v = make([]int64, 0, 4), make([]float64, 0, 4*stride)
		s.p, s.o = make([]int32, 0, 4), make([]int64, 0, 4)
	}
	i := s.position(t, r.Partition, r.Offset)
	s.openAt(i, t, r.Partition, r.Offset, stride)
	for j, f := range g.fields {
		s.v[i*stride+j] = ft.ev.Num[f]
	}
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
		// The rows are in (time, partition, offset) order: each span's are one run.
		for si := range g.spans {
			sp := &g.spans[si]
			hi := t - sp.delay
			g.addRange(a, si, s, hi-sp.length, hi)
		}
	}
	g.results(a, feat)
}
