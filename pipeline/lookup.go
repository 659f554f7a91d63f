package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/pipeline/record"
)

// LookupTransform is what a lookup feature makes of the table field it reads.
type LookupTransform string

// The lookup transforms.
const (
	LookupValue   LookupTransform = ""         // the field's number (int or float field)
	LookupAgeDays LookupTransform = "age_days" // time field: the event's time minus the field's, in days (event time, never the wall clock)
	LookupIndex   LookupTransform = "index"    // categorical: the value's position in Vocabulary; outside it, Default
	LookupOneHot  LookupTransform = "one_hot"  // categorical: one column per Vocabulary value (ExpandLookups), named FEATURE_VALUE
	LookupEquals  LookupTransform = "equals"   // categorical: 1 when the value is Equals, else 0 (one one-hot column)
)

// TableLookup is a lookup feature: the value of Field in the latest row of Table whose
// key equals the event's Key field and whose event time is at or before the event's;
// Default when there is none.
type TableLookup struct {
	Table      string          `yaml:"table"`
	Key        string          `yaml:"key"`
	Field      string          `yaml:"field"`
	Default    float64         `yaml:"default"`
	Transform  LookupTransform `yaml:"transform,omitempty"`
	Vocabulary []string        `yaml:"vocabulary,omitempty"`
	Equals     string          `yaml:"equals,omitempty"`
}

// tableLookup is one lookup feature, resolved against the event schema and its table.
type tableLookup struct {
	TableLookup
	col     int // position in the feature vector
	table   int // index into FeatureSpec.Tables
	slot    int // its stored value in each version of the table
	evKey   int
	keyType FieldType
	field   int // in the table's schema
	typ     FieldType
	vocab   map[string]int
}

// UnmarshalYAML reads a feature. `lookup:` is either the categorical map of the lookup
// transform (value: number) or a table lookup ({table, key, field, ...}), told apart by
// its `table` key.
func (f *Feature) UnmarshalYAML(n *yaml.Node) error {
	type plain Feature
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value != "lookup" || v.Kind != yaml.MappingNode || !hasKey(v, "table") {
				continue
			}
			var tl TableLookup
			dec := *v
			if err := decodeStrict(&dec, &tl); err != nil {
				return fmt.Errorf("line %d: lookup: %w", v.Line, err)
			}
			rest := *n
			rest.Content = append(append([]*yaml.Node(nil), n.Content[:i]...), n.Content[i+2:]...)
			if err := decodeKnown(&rest, (*plain)(f)); err != nil {
				return err
			}
			f.TableLookup = &tl
			return nil
		}
	}
	return decodeKnown(n, (*plain)(f))
}

// decodeKnown decodes n into v refusing unknown keys, as the config file's decoder does
// (a Node's Decode would not: an unmarshaler loses the decoder's strictness).
func decodeKnown(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// decodeStrict decodes a mapping into tl, refusing keys TableLookup does not have.
func decodeStrict(n *yaml.Node, tl *TableLookup) error {
	known := map[string]bool{"table": true, "key": true, "field": true, "default": true, "transform": true, "vocabulary": true, "equals": true}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !known[k] {
			return fmt.Errorf("unknown key %q (want table, key, field, default, transform, vocabulary)", k)
		}
	}
	return n.Decode(tl)
}

// ExpandLookups returns the features with every one_hot lookup replaced by one column per
// vocabulary value, named FEATURE_VALUE (upper case), each an equals lookup.
func ExpandLookups(fs []Feature) []Feature {
	out := make([]Feature, 0, len(fs))
	for _, f := range fs {
		if f.TableLookup == nil || f.TableLookup.Transform != LookupOneHot || len(f.TableLookup.Vocabulary) == 0 {
			out = append(out, f)
			continue
		}
		for _, v := range f.TableLookup.Vocabulary {
			g := f
			tl := *f.TableLookup
			tl.Transform, tl.Equals, tl.Vocabulary = LookupEquals, v, nil
			g.TableLookup = &tl
			g.Name = f.Name + "_" + strings.ToUpper(v)
			out = append(out, g)
		}
	}
	return out
}

// HasLookups reports whether any feature reads a reference table.
func (fs *FeatureSpec) HasLookups() bool { return len(fs.lookups) > 0 }

// UsedTables lists the tables that lookups read, in the order of Tables.
func (fs *FeatureSpec) UsedTables() []*TableConfig {
	used := map[int]bool{}
	for _, lk := range fs.lookups {
		used[lk.table] = true
	}
	var out []*TableConfig
	for i, tc := range fs.Tables {
		if used[i] {
			out = append(out, tc)
		}
	}
	return out
}

// compileLookup resolves feature i, a table lookup, against the event schema and the
// tables (compiled). Its messages say what to fix.
func (fs *FeatureSpec) compileLookup(i int, f *Feature, s *Schema) error {
	tl := f.TableLookup
	ti := -1
	names := make([]string, len(fs.Tables))
	for j, tc := range fs.Tables {
		names[j] = tc.Name
		if tc.Name == tl.Table {
			ti = j
		}
	}
	if ti < 0 {
		return fmt.Errorf("feature %s: lookup.table %q is not a table: add it under tables: (tables listed: %v)", f.Name, tl.Table, names)
	}
	tc := fs.Tables[ti]
	lk := &tableLookup{TableLookup: *tl, col: i, table: ti, evKey: s.FieldIndex(tl.Key), field: tc.schema.FieldIndex(tl.Field)}
	switch {
	case lk.evKey < 0:
		return fmt.Errorf("feature %s: lookup.key %q is not a field of the event schema", f.Name, tl.Key)
	case lk.field < 0:
		return fmt.Errorf("feature %s: lookup.field %q is not a field of table %s", f.Name, tl.Field, tc.Name)
	}
	lk.keyType, lk.typ = s.Fields[lk.evKey].Type, tc.schema.Fields[lk.field].Type
	if kt := tc.schema.Fields[tc.key].Type; lk.keyType != kt {
		return fmt.Errorf("feature %s: lookup.key %s is %s, but table %s's key_field %s is %s: match them",
			f.Name, tl.Key, lk.keyType, tc.Name, tc.KeyField, kt)
	}
	if err := lk.checkTransform(f.Name); err != nil {
		return err
	}
	if math.IsNaN(tl.Default) || math.IsInf(tl.Default, 0) {
		return fmt.Errorf("feature %s: lookup.default must be a finite number", f.Name)
	}
	f.field = -1
	fs.lookups = append(fs.lookups, lk)
	return nil
}

func (lk *tableLookup) checkTransform(name string) error {
	categorical := lk.typ == TypeString || lk.typ == TypeInt
	switch lk.Transform {
	case LookupValue:
		if lk.typ != TypeInt && lk.typ != TypeFloat {
			return fmt.Errorf("feature %s: lookup of %s (%s) needs a transform: age_days for a time, index or one_hot for a category", name, lk.Field, lk.typ)
		}
	case LookupAgeDays:
		if lk.typ != TypeTime {
			return fmt.Errorf("feature %s: transform age_days needs a time field, %s is %s", name, lk.Field, lk.typ)
		}
	case LookupIndex, LookupEquals:
		if !categorical {
			return fmt.Errorf("feature %s: transform %s needs a string or int field, %s is %s", name, lk.Transform, lk.Field, lk.typ)
		}
		if lk.Transform == LookupIndex && len(lk.Vocabulary) == 0 {
			return fmt.Errorf("feature %s: transform index needs a vocabulary (the categories, in order)", name)
		}
		lk.vocab = map[string]int{}
		for i, v := range lk.Vocabulary {
			if _, dup := lk.vocab[v]; dup {
				return fmt.Errorf("feature %s: vocabulary lists %q twice", name, v)
			}
			lk.vocab[v] = i
		}
	case LookupOneHot:
		return fmt.Errorf("feature %s: transform one_hot needs a vocabulary (one column per value)", name)
	default:
		return fmt.Errorf("feature %s: unknown lookup transform %q (want age_days, index or one_hot)", name, lk.Transform)
	}
	return nil
}

// tableMetrics are one table's series of the table metrics.
type tableMetrics struct {
	rows     prometheus.Gauge
	rejected *prometheus.CounterVec
}

// tableMetricVecs are the reference-table metrics, by table.
type tableMetricVecs struct {
	rows     *prometheus.GaugeVec
	rejected *prometheus.CounterVec
}

func newTableMetricVecs(reg prometheus.Registerer) *tableMetricVecs {
	v := &tableMetricVecs{
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamscore_table_rows", Help: "Versions of reference-table rows held for point-in-time lookups, by table.",
		}, []string{"table"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_table_rejected_total", Help: "Reference-table rows that failed validation (dead-lettered live), by table and error class.",
		}, []string{"table", "class"}),
	}
	if reg != nil {
		reg.MustRegister(v.rows, v.rejected)
	}
	return v
}

func (v *tableMetricVecs) of(table string) *tableMetrics {
	return &tableMetrics{rows: v.rows.WithLabelValues(table), rejected: v.rejected.MustCurryWith(prometheus.Labels{"table": table})}
}

// tableRef is one table the operator reads: its rows as a feedback-style table (the same
// watermark, idle and reload contract as the labels) and its versions.
type tableRef struct {
	ft    *feedbackTable
	store *tableStore
}

// addTables wires the tables that lookups read, each from srcs[name]. reject, when not
// nil, dead-letters a table row that fails validation.
func (ws *windowState) addTables(srcs map[string]FeedbackSource, reject func(tc *TableConfig, r *Record, de *DecodeError)) error {
	ws.stores = make([]*tableStore, len(ws.spec.Tables))
	for _, tc := range ws.spec.UsedTables() {
		src := srcs[tc.Name]
		if src == nil {
			return fmt.Errorf("operator: table %s is read by lookups but no source for it is wired", tc.Name)
		}
		st := newTableStore(tc, ws.m.tables.of(tc.Name))
		if reject != nil {
			st.reject = func(r *Record, de *DecodeError) { reject(tc, r, de) }
		}
		ft := newFeedbackTable(tc.feedbackConfig(), nil, src, ws.m, ws.log)
		ft.minDelay, ft.store = 0, st
		st.cut = &ft.dropBelow
		ft.lowWater = ws.lowWater
		ws.tables = append(ws.tables, tableRef{ft: ft, store: st})
		for i := range ws.spec.Tables {
			if ws.spec.Tables[i] == tc {
				ws.stores[i] = st
			}
		}
	}
	for _, lk := range ws.spec.lookups {
		st := ws.tableOf(lk.table)
		lk.slot = len(st.slots)
		st.slots = append(st.slots, lk)
	}
	if ws.newest == nil {
		ws.newest = map[TopicPartition]int64{}
	}
	return nil
}

func (ws *windowState) tableOf(i int) *tableStore { return ws.stores[i] }

// lookups waits until every table holds the rows an event at t can see, then writes the
// lookup features of ev.
func (ws *windowState) lookups(ctx context.Context, ev *Event, feat []float32) error {
	t := ev.Time.UnixNano()
	for _, tr := range ws.tables {
		if err := tr.ft.ensure(ctx, t); err != nil {
			return err
		}
		if tr.store.err != nil {
			return tr.store.err
		}
	}
	for _, lk := range ws.spec.lookups {
		feat[lk.col] = float32(ws.tableOf(lk.table).lookup(lk, ev, t))
	}
	return nil
}

// tableDeadLetter builds the dead letter of a table row that failed validation: its key
// and value, the error class and message, and where it came from. Its key's topic,
// partition and offset headers let a consumer drop the copies that each instance reading
// the table writes.
func tableDeadLetter(tc *TableConfig, r *Record, de *DecodeError) *Output {
	return &Output{
		Topic: tc.DeadLetter, Key: r.Key, Value: r.Value, Source: r,
		Headers: []Header{
			{Key: record.HeaderErrorClass, Value: []byte(de.Class)},
			{Key: record.HeaderErrorMessage, Value: []byte("table " + tc.Name + ": " + de.Error())},
			{Key: record.HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: record.HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
			{Key: record.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		},
	}
}

// tableReject dead-letters a table row; a failed write stops the operator like any
// failed output (the row stays in its topic and is read again after the restart).
func (o *Operator) tableReject(tc *TableConfig, r *Record, de *DecodeError) {
	out := tableDeadLetter(tc, r, de)
	o.sink.Produce(out, func(err error) {
		if err != nil {
			o.writeFailed(out, r, err)
			return
		}
		if c := o.out[out.Topic]; c != nil {
			c.Inc()
		}
	})
}

// wireTables gives the window state the tables its lookups read, with their dead-letter
// topics when the driver dead-letters table rows.
func (o *Operator) wireTables() error {
	if !o.cfg.Features.HasLookups() {
		return nil
	}
	var reject func(*TableConfig, *Record, *DecodeError)
	if o.cfg.TableDeadLetters {
		reject = o.tableReject
		for _, tc := range o.cfg.Features.UsedTables() {
			if tc.DeadLetter == "" {
				return fmt.Errorf("operator: table %s has no dead_letter topic for the rows that fail validation", tc.Name)
			}
			o.out[tc.DeadLetter] = o.m.recordsOut.WithLabelValues(tc.DeadLetter)
		}
	}
	return o.state.addTables(o.cfg.Tables, reject)
}
