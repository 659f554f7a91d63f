package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/pipeline/record"
)

// DriftConfig turns on drift monitoring: every scored row's features and score are
// counted into tumbling event-time windows against the training reference of the version
// that scored it, and each closed window is written to Topic as a drift.Record.
//
// Windows and determinism. A window is kept per input partition and model version, and it
// closes when a record of that partition has an event time at or past the window's end;
// its drift records are outputs of that record (acknowledged before its offset is
// committed, in its transaction in exactly-once mode). Everything a record depends on is
// therefore the partition's log (event times in log order) and the version that scored
// each record, never fetch timing or how partitions interleave: a backfill of the same
// log, replaying the versions live scoring used, writes the same records. A window that
// spans all partitions could not close by such a rule (an idle partition would hold it
// open, or its closing would depend on which partition was read first), so the topic
// holds per-partition windows with their bin counts, and readers merge them: the
// /metrics gauges and `streamscore drift` sum the partitions' counts of a window, by its
// start, whatever order the partitions close it in.
// Records with an event time before their partition's open window count as late.
type DriftConfig struct {
	Topic string
	// Window is the length of the tumbling windows, aligned as time.Truncate aligns them
	// (1h: on the hour; 24h: at midnight UTC; 168h: on Mondays at midnight UTC).
	Window time.Duration
	// MinCount is the number of rows a window needs to be judged (its PSI exported).
	MinCount int64
	// Reference returns the training reference of a version, or nil when it has none
	// (its rows are not counted). Called once per version, on the batcher's goroutine.
	Reference func(Scorer) *drift.Reference
}

func (c *DriftConfig) validate() error {
	switch {
	case c.Topic == "":
		return errors.New("operator: drift monitoring needs a topic (topics.drift)")
	case c.Window <= 0:
		return fmt.Errorf("operator: drift.window is %v, want a positive duration such as 1h", c.Window)
	case c.Reference == nil:
		return errors.New("operator: drift monitoring needs a reference lookup")
	}
	return nil
}

// driftState is the operator's open drift windows. observe runs on the batcher's
// goroutine; forget on the rebalance handlers' goroutines, hence the lock.
type driftState struct {
	cfg   DriftConfig
	names []string
	m     *driftMetrics
	log   *zap.Logger

	mu    sync.Mutex
	parts map[TopicPartition]*partWindows
	refs  map[Scorer]*drift.Reference // nil value: the version has no (usable) reference
	gauge map[string][]*mergedWindow  // by model name: the newest windows merged over partitions, by start
}

// partWindows is one input partition's open window, one Counts per version seen in it.
type partWindows struct {
	start   time.Time
	partial bool
	late    int64
	byVer   []verCounts
}

type verCounts struct {
	m Scorer
	c *drift.Counts
}

func newDriftState(cfg DriftConfig, names []string, m *driftMetrics, log *zap.Logger) *driftState {
	return &driftState{cfg: cfg, names: names, m: m, log: log, parts: map[TopicPartition]*partWindows{},
		refs: map[Scorer]*drift.Reference{}, gauge: map[string][]*mergedWindow{}}
}

// observe counts one scored row and returns the drift records of the windows its event
// time closes (usually none).
func (d *driftState) observe(rec *Record, m Scorer, eventTime time.Time, feat []float32, score float32) []*Output {
	d.mu.Lock()
	defer d.mu.Unlock()
	tp := TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
	p := d.parts[tp]
	start := eventTime.Truncate(d.cfg.Window)
	var outs []*Output
	switch {
	case p == nil:
		p = &partWindows{start: start, partial: rec.Offset != 0}
		d.parts[tp] = p
	case start.After(p.start):
		outs = d.close(tp, p)
		p.start, p.partial, p.late = start, false, 0
	case start.Before(p.start):
		p.late++
		return nil
	}
	c := p.counts(m, d)
	if c != nil {
		c.Add(feat, score)
	}
	return outs
}

// counts returns the partition's counts for version m, nil when m has no reference.
func (p *partWindows) counts(m Scorer, d *driftState) *drift.Counts {
	for i := range p.byVer {
		if p.byVer[i].m == m {
			return p.byVer[i].c
		}
	}
	ref := d.reference(m)
	if ref == nil {
		return nil
	}
	c := drift.NewCounts(ref)
	p.byVer = append(p.byVer, verCounts{m: m, c: c})
	return c
}

func (d *driftState) reference(m Scorer) *drift.Reference {
	ref, ok := d.refs[m]
	if !ok {
		ref = d.cfg.Reference(m)
		if ref == nil {
			d.log.Warn("no drift reference for this model version: its rows are not monitored",
				zap.String("model", m.Name()), zap.String("version", m.Version()))
		} else if err := ref.Check(d.names); err != nil {
			d.log.Warn("drift reference does not fit the model: its rows are not monitored",
				zap.String("model", m.Name()), zap.String("version", m.Version()), zap.Error(err))
			ref = nil
		}
		d.refs[m] = ref
	}
	return ref
}

// close turns the partition's open window into one record per version that scored rows
// in it, and merges it into the gauges' window.
func (d *driftState) close(tp TopicPartition, p *partWindows) []*Output {
	end := p.start.Add(d.cfg.Window)
	var outs []*Output
	for _, v := range p.byVer {
		if v.c.N == 0 {
			continue
		}
		r := drift.NewRecord(v.m.Name(), v.m.Version(), tp.Topic, tp.Partition, p.start, end, v.c, d.cfg.MinCount)
		r.Late, r.Partial = p.late, p.partial
		val, err := json.Marshal(r)
		if err != nil {
			panic(fmt.Sprintf("encoding a drift record: %v", err)) // plain numbers and strings: cannot fail
		}
		key := strconv.AppendInt([]byte(v.m.Name()+"/"+tp.Topic+"/"), int64(tp.Partition), 10)
		outs = append(outs, &Output{Topic: d.cfg.Topic, Key: key, Value: val,
			Headers: []Header{{Key: record.HeaderModelVersion, Value: []byte(v.m.Version())}}})
		d.merge(v.m, p.start, v.c)
		d.m.windows.WithLabelValues(v.m.Name(), strconv.FormatBool(r.Judged)).Inc()
	}
	// counts are reused for the next window; a version that scored nothing in this one is
	// dropped, so that a swapped-out version does not stay
	kept := p.byVer[:0]
	for _, v := range p.byVer {
		if v.c.N > 0 {
			v.c.Reset()
			kept = append(kept, v)
		}
	}
	p.byVer = kept
	return outs
}

// gaugeWindows is how many windows per model the gauges keep merging into. Partitions
// close a window at different wall times (a catch-up, a backfill, partitions at different
// event times), so the gauges merge by window, not by arrival: a partition's closed window
// is added to the merged window with the same start, and the gauges show the newest merged
// window that is judged. A window older than every kept one is not merged (the gauges
// already show a newer one, or will); a partition lagging further than this behind the
// newest window adds nothing to them, though its drift records are written as always.
const gaugeWindows = 8

// mergedWindow sums the partitions' counts of one window of one model version for the
// gauges.
type mergedWindow struct {
	version string
	start   time.Time
	c       *drift.Counts
}

// merge adds a partition's closed window to the merged window of the same start and
// version (keeping the newest gaugeWindows starts of the model), then sets the gauges
// from the newest merged window that has min_count rows.
func (d *driftState) merge(m Scorer, start time.Time, c *drift.Counts) {
	name := m.Name()
	ws := d.gauge[name]
	i := slices.IndexFunc(ws, func(w *mergedWindow) bool { return w.start.Equal(start) && w.version == m.Version() })
	var w *mergedWindow
	if i >= 0 {
		w = ws[i]
	} else {
		if len(ws) >= gaugeWindows && !start.After(ws[0].start) {
			return // older than every kept window
		}
		w = &mergedWindow{version: m.Version(), start: start, c: drift.NewCounts(c.Reference())}
		ws = append(ws, w)
		slices.SortStableFunc(ws, func(a, b *mergedWindow) int { return a.start.Compare(b.start) })
		if len(ws) > gaugeWindows { // the oldest goes: the new window is newer than it
			ws = slices.Delete(ws, 0, len(ws)-gaugeWindows)
		}
		d.gauge[name] = ws
	}
	w.c.Merge(c)
	if g := d.newestJudged(ws); g != nil {
		d.publish(name, g)
	}
}

// newestJudged is the merged window with the latest start that has min_count rows (of two
// versions' windows of the same start, the one with more rows), or nil.
func (d *driftState) newestJudged(ws []*mergedWindow) *mergedWindow {
	var best *mergedWindow
	for _, w := range ws { // ascending start
		if w.c.N < d.cfg.MinCount {
			continue
		}
		if best == nil || w.start.After(best.start) || w.c.N > best.c.N {
			best = w
		}
	}
	return best
}

// publish sets the model's gauges from a merged window.
func (d *driftState) publish(name string, g *mergedWindow) {
	feats, score := g.c.Stats()
	for _, s := range feats {
		d.m.featurePSI.WithLabelValues(name, s.Name).Set(s.PSI)
		d.m.outOfRange.WithLabelValues(name, s.Name).Set(s.OutOfRange)
	}
	d.m.scorePSI.WithLabelValues(name).Set(score.PSI)
	d.m.outOfRange.WithLabelValues(name, "score").Set(score.OutOfRange)
	d.m.windowEnd.WithLabelValues(name).Set(float64(g.start.Add(d.cfg.Window).Unix()))
}

// forgetAll drops every open window: the records of an aborted transaction are fetched
// again, and counting them twice would make the windows lie. Their next windows are
// partial.
func (d *driftState) forgetAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.parts)
}

// forget drops the open windows of partitions this instance no longer reads; if they come
// back, their next windows are partial.
func (d *driftState) forget(tps []TopicPartition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, tp := range tps {
		delete(d.parts, tp)
	}
}

// driftMetrics are the drift gauges of the latest complete window, per model name.
type driftMetrics struct {
	featurePSI *prometheus.GaugeVec
	scorePSI   *prometheus.GaugeVec
	outOfRange *prometheus.GaugeVec
	windowEnd  *prometheus.GaugeVec
	windows    *prometheus.CounterVec
}

func newDriftMetrics(reg prometheus.Registerer) *driftMetrics {
	m := &driftMetrics{
		featurePSI: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamscore_feature_psi", Help: "PSI of each feature against the training reference, in the latest judged drift window (partitions merged).",
		}, []string{"model", "feature"}),
		scorePSI: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamscore_score_psi", Help: "PSI of the score against the training reference, in the latest judged drift window (partitions merged).",
		}, []string{"model"}),
		outOfRange: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamscore_drift_out_of_range_ratio", Help: "Share of values outside the training range, per feature (and \"score\"), in the latest judged drift window.",
		}, []string{"model", "feature"}),
		windowEnd: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamscore_drift_window_end_timestamp_seconds", Help: "Event-time end of the drift window the PSI gauges describe.",
		}, []string{"model"}),
		windows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_drift_windows_total", Help: "Per-partition drift windows closed, by whether they had drift.min_count rows (judged).",
		}, []string{"model", "judged"}),
	}
	if reg != nil {
		reg.MustRegister(m.featurePSI, m.scorePSI, m.outOfRange, m.windowEnd, m.windows)
	}
	return m
}
