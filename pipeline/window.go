package pipeline

import (
	"fmt"
	"time"
)

// Agg is how a window feature aggregates the rows in its window.
type Agg string

// The aggregations of a window.
const (
	AggCount Agg = "count" // number of rows
	AggSum   Agg = "sum"   // sum of the field, in float64, in a canonical row order
	AggMean  Agg = "mean"  // sum / count
	AggMin   Agg = "min"
	AggMax   Agg = "max"
)

// Where a window reads its rows from.
const (
	// SourceEvents: the earlier events of the same entity in the same input partition. The
	// entity key must be the record key (schema.key_field), so that one partition holds
	// all of an entity's events.
	SourceEvents = "events"
	// SourceFeedback: the feedback topic (labels), read whole by every instance like a
	// global table, and joined by event time.
	SourceFeedback = "feedback"
)

// Window turns a feature into an aggregate over an entity's rows in an event-time window.
// For an event at time t, the window is (t − Delay − Length, t − Delay]; rows are events
// (or feedback records) of the same Key. With Delay 0 and events as the source, the
// current event is included unless IncludeCurrent is false. The feature's Field is the
// aggregated field (of the events, or of the feedback records); count needs none.
// Feature.Default, when set, is the value of an empty window (otherwise 0).
type Window struct {
	Key            string        `yaml:"key"`
	Agg            Agg           `yaml:"agg"`
	Length         time.Duration `yaml:"length"`
	Delay          time.Duration `yaml:"delay,omitempty"`
	Source         string        `yaml:"source,omitempty"`
	IncludeCurrent *bool         `yaml:"include_current,omitempty"`
}

// FeedbackConfig describes the feedback topic (delayed labels) that feedback windows read.
type FeedbackConfig struct {
	Schema `yaml:",inline"`
	// IDField and LabelField name the feedback fields that export uses to attach each
	// event's label (matched by IDField, which the events carry too).
	IDField    string `yaml:"id_field"`
	LabelField string `yaml:"label_field"`
	// IdleTimeout: a feedback partition that is caught up and silent this long stops
	// holding events back (see docs/features.md). Default 1s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Rows are dropped once no input partition read by this operator can need them (its
	// newest event, less a day of lateness, less the longest window). Retention, when set,
	// also caps how far behind the newest feedback record rows are kept: a hard bound on
	// memory, at the price of reloading the table for events older than that.
	Retention time.Duration `yaml:"retention"`
}

// compiledWindow is one window feature, resolved.
type compiledWindow struct {
	col     int // position in the feature vector
	name    string
	agg     Agg
	length  int64 // ns
	delay   int64 // ns
	current bool  // include the current event
	val     int   // index into the group's stored values; -1 for count
	empty   float64
	span    int // index into the group's spans
}

// span is one distinct (delay, length, current) of a group: windows that differ only in
// their aggregate share it, so a scan tests each row once per span, not per window.
type span struct {
	delay, length int64
	current       bool
}

// windowGroup is every window over one source and key: one pass over an entity's rows
// serves them all.
type windowGroup struct {
	source   string
	evKey    int   // key field in the event schema
	fbKey    int   // key field in the feedback schema (feedback groups)
	fields   []int // stored fields (event or feedback schema indices), in value order
	windows  []compiledWindow
	spans    []span
	needs    [][]fieldNeed // per span: what its windows read of each stored field
	horizon  int64         // longest delay + length, ns
	minDelay int64         // ns
	keyType  FieldType
}

// What a window reads of its field's accumulator; a span accumulates only what some
// window of it reads (the row count, always).
const (
	needSum uint8 = 1 << iota // sum and mean
	needMin
	needMax
)

// fieldNeed is what a span's windows read of one stored field.
type fieldNeed struct {
	val  int // index into the group's stored values
	what uint8
}

func (g *windowGroup) valueIndex(field int) int {
	for i, f := range g.fields {
		if f == field {
			return i
		}
	}
	g.fields = append(g.fields, field)
	return len(g.fields) - 1
}

// compileWindow checks one window feature and adds it to its group.
func (fs *FeatureSpec) compileWindow(col int, f *Feature, s *Schema) error {
	w := f.Window
	src, err := windowSource(f)
	if err != nil {
		return err
	}
	evKey, kt, err := windowKey(f, s)
	if err != nil {
		return err
	}
	current, err := includeCurrent(f, src)
	if err != nil {
		return err
	}
	rowSchema, fbKey, err := fs.rowSchema(f, s, src, kt)
	if err != nil {
		return err
	}
	g := fs.group(src, evKey, fbKey, kt, int64(w.Delay))
	cw := compiledWindow{col: col, name: f.Name, agg: w.Agg, length: int64(w.Length), delay: int64(w.Delay), current: current, val: -1}
	if f.Default != nil {
		cw.empty = *f.Default
	}
	if cw.val, err = g.aggValue(f, rowSchema, src); err != nil {
		return err
	}
	g.addWindow(cw)
	return nil
}

// windowSource checks the parts of a window that need no schema and returns where it
// reads its rows from.
func windowSource(f *Feature) (string, error) {
	w := f.Window
	src := w.Source
	if src == "" {
		src = SourceEvents
	}
	if src != SourceEvents && src != SourceFeedback {
		return "", fmt.Errorf("feature %s: window source %q: want events or feedback", f.Name, w.Source)
	}
	if w.Length <= 0 {
		return "", fmt.Errorf("feature %s: window length must be positive (e.g. 24h)", f.Name)
	}
	if w.Delay < 0 {
		return "", fmt.Errorf("feature %s: window delay %v is negative", f.Name, w.Delay)
	}
	if f.Transform != TransformNone || len(f.Lookup) > 0 {
		return "", fmt.Errorf("feature %s: a window feature takes no transform or lookup", f.Name)
	}
	return src, nil
}

// windowKey resolves the window's key in the event schema.
func windowKey(f *Feature, s *Schema) (evKey int, kt FieldType, err error) {
	w := f.Window
	evKey = s.FieldIndex(w.Key)
	if evKey < 0 {
		return -1, "", fmt.Errorf("feature %s: window key %q is not a field of the events", f.Name, w.Key)
	}
	kt = s.Fields[evKey].Type
	if (kt != TypeInt && kt != TypeString) || !s.Fields[evKey].Required {
		return -1, "", fmt.Errorf("feature %s: window key %q must be a required int or string field", f.Name, w.Key)
	}
	return evKey, kt, nil
}

// includeCurrent reports whether the window holds the event being scored: by default an
// events window without delay does; include_current can only turn that off.
func includeCurrent(f *Feature, src string) (bool, error) {
	w := f.Window
	current := src == SourceEvents && w.Delay == 0
	if w.IncludeCurrent != nil {
		if *w.IncludeCurrent && !current {
			return false, fmt.Errorf("feature %s: include_current needs an events window without delay", f.Name)
		}
		current = *w.IncludeCurrent
	}
	return current, nil
}

// rowSchema returns the schema of the rows a window aggregates and, for a feedback window,
// the position of its key in that schema (-1 for events).
func (fs *FeatureSpec) rowSchema(f *Feature, s *Schema, src string, kt FieldType) (*Schema, int, error) {
	w := f.Window
	if src == SourceEvents {
		if s.KeyField == "" {
			return nil, -1, fmt.Errorf("feature %s: windows over events need schema.key_field (the field that is the record key), so that an entity's events share a partition", f.Name)
		}
		if w.Key != s.KeyField {
			return nil, -1, fmt.Errorf("feature %s: a window over events must be keyed by the record key %q, not %q (one partition holds all events of a key); use source: feedback for other entities", f.Name, s.KeyField, w.Key)
		}
		return s, -1, nil
	}
	if fs.Feedback == nil || fs.Feedback.index == nil {
		return nil, -1, fmt.Errorf("feature %s: window source feedback needs a compiled feedback schema (feedback: in the config)", f.Name)
	}
	rs := &fs.Feedback.Schema
	fbKey := rs.FieldIndex(w.Key)
	if fbKey < 0 || rs.Fields[fbKey].Type != kt || !rs.Fields[fbKey].Required {
		return nil, -1, fmt.Errorf("feature %s: window key %q must be a required %s field of the feedback records too", f.Name, w.Key, kt)
	}
	if rs.eventTime < 0 {
		return nil, -1, fmt.Errorf("feature %s: the feedback schema needs an event_time field: feedback is joined by event time", f.Name)
	}
	return rs, fbKey, nil
}

// group returns the group of windows over src keyed by evKey, creating it.
func (fs *FeatureSpec) group(src string, evKey, fbKey int, kt FieldType, delay int64) *windowGroup {
	var g *windowGroup
	for _, x := range fs.groups {
		if x.source == src && x.evKey == evKey {
			g = x
		}
	}
	if g == nil {
		g = &windowGroup{source: src, evKey: evKey, fbKey: fbKey, keyType: kt, minDelay: delay}
		fs.groups = append(fs.groups, g)
	}
	return g
}

// aggValue checks a window's aggregate against the schema of its rows and returns the
// index of its field among the group's stored values (-1 for count, which stores none).
func (g *windowGroup) aggValue(f *Feature, rowSchema *Schema, src string) (int, error) {
	w := f.Window
	switch w.Agg {
	case AggCount:
		if f.Field != "" {
			return -1, fmt.Errorf("feature %s: count takes no field", f.Name)
		}
		return -1, nil
	case AggSum, AggMean, AggMin, AggMax:
		fi := rowSchema.FieldIndex(f.Field)
		if fi < 0 {
			return -1, fmt.Errorf("feature %s: field %q is not in the %s schema", f.Name, f.Field, src)
		}
		ft := rowSchema.Fields[fi]
		if (ft.Type != TypeInt && ft.Type != TypeFloat) || !ft.Required {
			return -1, fmt.Errorf("feature %s: %s needs a required numeric field, %s is not", f.Name, w.Agg, f.Field)
		}
		return g.valueIndex(fi), nil
	default:
		return -1, fmt.Errorf("feature %s: window agg %q: want count, sum, mean, min or max", f.Name, w.Agg)
	}
}

// addWindow adds a checked window to the group, sharing the span of any window that
// differs from it only in its aggregate.
func (g *windowGroup) addWindow(cw compiledWindow) {
	sp := span{cw.delay, cw.length, cw.current}
	cw.span = -1
	for i, x := range g.spans {
		if x == sp {
			cw.span = i
		}
	}
	if cw.span < 0 {
		g.spans = append(g.spans, sp)
		g.needs = append(g.needs, nil)
		cw.span = len(g.spans) - 1
	}
	if cw.val >= 0 {
		g.need(cw.span, cw.val, cw.agg)
	}
	g.windows = append(g.windows, cw)
	g.horizon = max(g.horizon, cw.delay+cw.length)
	g.minDelay = min(g.minDelay, cw.delay)
}

// need records that span si has a window aggregating stored value val with agg.
func (g *windowGroup) need(si, val int, agg Agg) {
	what := needSum
	switch agg {
	case AggMin:
		what = needMin
	case AggMax:
		what = needMax
	}
	for i := range g.needs[si] {
		if g.needs[si][i].val == val {
			g.needs[si][i].what |= what
			return
		}
	}
	g.needs[si] = append(g.needs[si], fieldNeed{val: val, what: what})
}

// HasWindows reports whether any feature is a window (the operator then keeps state).
func (fs *FeatureSpec) HasWindows() bool { return len(fs.groups) > 0 }

// UsesFeedback reports whether any window reads the feedback topic.
func (fs *FeatureSpec) UsesFeedback() bool {
	for _, g := range fs.groups {
		if g.source == SourceFeedback {
			return true
		}
	}
	return false
}

// acc accumulates one window: what a span's rows add to one of its stored fields (or,
// first in each span, only the row count). Each sum adds the rows in the series' order,
// one by one in float64, so that every feature is bit for bit that of a row-by-row scan
// of the same rows; the order is part of the result.
type acc struct {
	n             int
	sum, min, max float64
}

// addMin and addMax take col[0], col[stride], ... as the next rows' values. The first
// value seen is the start, then only a strictly smaller (larger) one replaces it: the
// order decides between equal values such as 0 and -0.
func (a *acc) addMin(col []float64, stride int) {
	i, m := 0, a.min
	if a.n == 0 {
		i, m = stride, col[0]
	}
	for ; i < len(col); i += stride {
		if col[i] < m {
			m = col[i]
		}
	}
	a.min = m
}

func (a *acc) addMax(col []float64, stride int) {
	i, m := 0, a.max
	if a.n == 0 {
		i, m = stride, col[0]
	}
	for ; i < len(col); i += stride {
		if col[i] > m {
			m = col[i]
		}
	}
	a.max = m
}

func (a *acc) addSum(col []float64, stride int) {
	sum := a.sum
	for i := 0; i < len(col); i += stride {
		sum += col[i]
	}
	a.sum = sum
}

func (w *compiledWindow) result(a *acc) float64 {
	if a.n == 0 {
		if w.agg == AggCount || w.agg == AggSum {
			return 0
		}
		return w.empty
	}
	switch w.agg {
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

// addRows adds n rows to span si; v holds their stored values, row after row, in the
// order they are added.
func (g *windowGroup) addRows(a []acc, si int, v []float64, n int) {
	if n <= 0 {
		return
	}
	stride := len(g.fields)
	base := si * (stride + 1)
	a[base].n += n
	for _, fn := range g.needs[si] {
		x := &a[base+1+fn.val]
		col := v[fn.val:]
		if fn.what&needSum != 0 {
			x.addSum(col, stride)
		}
		if fn.what&needMin != 0 {
			x.addMin(col, stride)
		}
		if fn.what&needMax != 0 {
			x.addMax(col, stride)
		}
		x.n += n
	}
}

// addRange adds the rows of s with times in (lo, hi] to span si. The rows must be in
// time order: they are then one run, found by binary search, in the order a scan of
// the whole series would meet them.
func (g *windowGroup) addRange(a []acc, si int, s *series, lo, hi int64) {
	i, j := s.after(lo), s.after(hi)
	if j > i {
		stride := len(g.fields)
		g.addRows(a, si, s.v[i*stride:j*stride], j-i)
	}
}

// addScan is addRange for rows out of time order: it tests every row and gathers those
// in (lo, hi], in series order, into buf, which it returns for reuse.
func (g *windowGroup) addScan(a []acc, si int, s *series, lo, hi int64, buf []float64) []float64 {
	stride := len(g.fields)
	buf = buf[:0]
	n := 0
	for i, ti := range s.t {
		if ti > lo && ti <= hi {
			buf = append(buf, s.v[i*stride:(i+1)*stride]...)
			n++
		}
	}
	g.addRows(a, si, buf, n)
	return buf
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
