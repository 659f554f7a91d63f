package pipeline

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// TableConfig is one reference table (`tables:` in the config): a topic of the table's
// changes, each row true from its event time on. Every instance reads the whole topic,
// as it reads the labels, and keeps per key the versions that open events may still need.
type TableConfig struct {
	Name  string `yaml:"name"`
	Topic string `yaml:"topic"`
	// KeyField is the table's key, matched against the event field each lookup names.
	KeyField string `yaml:"key_field"`
	// EventTime is the time field that says when a row became true.
	EventTime string  `yaml:"event_time"`
	Fields    []Field `yaml:"fields"`
	// MaxRows bounds the versions held (all keys together): a table that outgrows it
	// stops the operator with an error that says so, rather than running out of memory.
	MaxRows int `yaml:"max_rows"`
	// DeadLetter receives the table rows that fail validation, with their error class.
	DeadLetter string `yaml:"dead_letter"`
	// IdleTimeout: a table partition caught up and silent this long stops holding events
	// back (as feedback.idle_timeout). Default 1s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`

	schema Schema
	key    int
}

// DefaultTableMaxRows is max_rows when the config leaves it 0.
const DefaultTableMaxRows = 1_000_000

// Compile checks the table and prepares its decoder schema. Its messages name the
// table's config keys.
func (tc *TableConfig) Compile() error {
	if tc.Name == "" {
		return errors.New("tables: a table has no name")
	}
	if tc.Topic == "" {
		return fmt.Errorf("tables.%s.topic: name the topic of the table's changes", tc.Name)
	}
	if tc.MaxRows < 0 {
		return fmt.Errorf("tables.%s.max_rows %d: want a number of rows above 0 (0: %d)", tc.Name, tc.MaxRows, DefaultTableMaxRows)
	}
	if tc.MaxRows == 0 {
		tc.MaxRows = DefaultTableMaxRows
	}
	if tc.IdleTimeout < 0 {
		return fmt.Errorf("tables.%s.idle_timeout %v: want a positive duration", tc.Name, tc.IdleTimeout)
	}
	if tc.EventTime == "" {
		return fmt.Errorf("tables.%s.event_time: name the time field that says when a row became true", tc.Name)
	}
	tc.schema = Schema{Fields: tc.Fields, EventTime: tc.EventTime}
	if err := tc.schema.Compile(); err != nil {
		return fmt.Errorf("tables.%s: %w", tc.Name, err)
	}
	tc.key = tc.schema.FieldIndex(tc.KeyField)
	switch {
	case tc.KeyField == "":
		return fmt.Errorf("tables.%s.key_field: name the table's key field", tc.Name)
	case tc.key < 0:
		return fmt.Errorf("tables.%s.key_field %q is not one of the table's fields", tc.Name, tc.KeyField)
	case tc.schema.Fields[tc.key].Type != TypeInt && tc.schema.Fields[tc.key].Type != TypeString || !tc.schema.Fields[tc.key].Required:
		return fmt.Errorf("tables.%s.key_field %q must be a required int or string field", tc.Name, tc.KeyField)
	}
	return nil
}

// feedbackConfig is the table as the feedback table's reader sees it: its schema, idle
// timeout and no retention cap (versions go by the open events' need only).
func (tc *TableConfig) feedbackConfig() *FeedbackConfig {
	return &FeedbackConfig{Schema: tc.schema, IdleTimeout: tc.IdleTimeout}
}

// tableStore holds one table's versions: per key, its rows in (time, partition, offset)
// order, each with one stored value per lookup feature of the table (slots). It is used
// from the fetch loop only.
type tableStore struct {
	tc     *TableConfig
	slots  []*tableLookup // the lookups reading this table; slot i is slots[i]
	rows   entityMap
	held   int   // versions held, all keys
	err    error // sticky: max_rows exceeded
	reject func(r *Record, err *DecodeError)
	// rejected is the highest offset dead-lettered per partition: a reload reads the
	// rows again, and each bad row is dead-lettered once per process.
	rejected map[int32]int64
	m        *tableMetrics
	cut      *int64 // the reader's dropBelow: versions no open event needs are at or below it
}

func newTableStore(tc *TableConfig, m *tableMetrics) *tableStore {
	return &tableStore{tc: tc, rows: newEntityMap(), rejected: map[int32]int64{}, m: m}
}

func (ts *tableStore) reset() {
	ts.rows = newEntityMap()
	ts.held = 0
	ts.m.rows.Set(0)
}

// bad handles a row that failed validation: it is dead-lettered (live) with its class.
func (ts *tableStore) bad(r *Record, de *DecodeError) {
	if last, ok := ts.rejected[r.Partition]; ok && r.Offset <= last {
		return
	}
	ts.rejected[r.Partition] = r.Offset
	ts.m.rejected.WithLabelValues(string(de.Class)).Inc()
	if ts.reject != nil {
		ts.reject(r, de)
	}
}

// insert adds the decoded row ev (record r, time t) to its key's versions.
func (ts *tableStore) insert(ev *Event, r *Record, t int64) {
	if ts.err != nil {
		return
	}
	if ts.held >= ts.tc.MaxRows && ts.cut != nil {
		ts.sweep(*ts.cut) // make room by dropping what no open event needs
	}
	if ts.held >= ts.tc.MaxRows {
		ts.err = fmt.Errorf("table %s holds %d rows, its bound (tables.%s.max_rows): raise max_rows, or keep fewer versions in topic %s",
			ts.tc.Name, ts.held, ts.tc.Name, ts.tc.Topic)
		return
	}
	s := ts.rows.get(ev, ts.tc.key, ts.tc.schema.Fields[ts.tc.key].Type, true)
	if s.p == nil {
		s.p, s.o = []int32{}, []int64{}
	}
	stride := len(ts.slots)
	i := s.position(t, r.Partition, r.Offset)
	if i > 0 && s.t[i-1] == t && s.p[i-1] == r.Partition && s.o[i-1] == r.Offset {
		return // read again (a rewind that kept it)
	}
	s.openAt(i, t, r.Partition, r.Offset, stride)
	for j, lk := range ts.slots {
		s.v[i*stride+j] = lk.store(ev)
	}
	ts.held++
}

// sweep drops, per key, the versions that no event at or after cut can see: all but the
// newest at or before cut. It returns the versions still held.
func (ts *tableStore) sweep(cut int64) int {
	stride := len(ts.slots)
	n := 0
	trim := func(s *series) {
		k := sort.Search(len(s.t), func(i int) bool { return s.t[i] > cut }) // first row after cut
		if k > 1 {
			s.dropFront(k-1, stride)
		}
		n += len(s.t)
	}
	for _, s := range ts.rows.ints {
		trim(s)
	}
	for _, s := range ts.rows.strs {
		trim(s)
	}
	ts.held = n
	ts.m.rows.Set(float64(n))
	return n
}

// lookup writes feature lk of the event ev at time t: the key's latest version at or
// before t, or the default.
func (ts *tableStore) lookup(lk *tableLookup, ev *Event, t int64) float64 {
	if !ev.Has(lk.evKey) {
		return lk.Default
	}
	s := ts.rows.get(ev, lk.evKey, lk.keyType, false)
	if s == nil {
		return lk.Default
	}
	i := sort.Search(len(s.t), func(i int) bool { return s.t[i] > t }) - 1
	if i < 0 {
		return lk.Default
	}
	return lk.value(s.v[i*len(ts.slots)+lk.slot], t)
}

// absentTime marks a time slot whose field was absent (math.MinInt64 as stored bits).
var absentTime = math.Float64frombits(1 << 63)

// store is what slot lk keeps of a table row: the field's number, its transformed
// category, or (age) its time as the bits of its unix nanoseconds, exact. NaN: absent.
func (lk *tableLookup) store(ev *Event) float64 {
	if !ev.Has(lk.field) {
		if lk.Transform == LookupAgeDays {
			return absentTime
		}
		return math.NaN()
	}
	switch lk.Transform {
	case LookupAgeDays:
		return math.Float64frombits(uint64(ev.Int[lk.field]))
	case LookupIndex, LookupEquals:
		var v string
		if lk.typ == TypeString {
			v = ev.Str[lk.field]
		} else {
			v = strconv.FormatInt(ev.Int[lk.field], 10)
		}
		if lk.Transform == LookupEquals {
			if v == lk.Equals {
				return 1
			}
			return 0
		}
		if i, ok := lk.vocab[v]; ok {
			return float64(i)
		}
		return math.NaN() // outside the vocabulary: the default
	}
	return ev.Num[lk.field]
}

// value turns a stored slot into the feature of an event at t.
func (lk *tableLookup) value(v float64, t int64) float64 {
	if lk.Transform == LookupAgeDays {
		if math.Float64bits(v) == math.Float64bits(absentTime) {
			return lk.Default
		}
		return float64(t-int64(math.Float64bits(v))) / float64(24*time.Hour)
	}
	if math.IsNaN(v) {
		return lk.Default
	}
	return v
}
