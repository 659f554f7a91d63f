package pipeline

import (
	"math"
	"strconv"
)

// Route picks, per record, what scores it: an experiment's arm, the plan of a segment
// rule. The operator asks it once per row of a batch chosen with it, so a change of
// routing, like a swap, happens between batches. Pick and Mirror must be pure functions
// of the record and its fields: a replay that routes with the same Route (rebuilt from
// the switch marker's Spec) reproduces every prediction.
type Route struct {
	// ID names the routing for switch markers: a marker is written whenever the ID that
	// routes a partition changes.
	ID string
	// Spec is what the marker records of it (JSON), for a replay to rebuild the Route.
	Spec []byte
	// Pick returns the scorer of rec; fields are the event's numeric schema fields by
	// index (NaN where absent), captured when Config.RouteFields is set, else nil.
	Pick func(rec *Record, fields []float64) Scorer
	// Mirror, when set, returns a second scorer whose prediction of rec goes to the
	// shadow topic (an experiment's other arm), nil for none.
	Mirror func(rec *Record, fields []float64) Scorer
}

// Annotated is a Scorer whose predictions carry more than a score: ensemble members'
// scores, the cascade stage that decided, the experiment arm. The operator calls
// AppendFields for each row of a Score call, before its next Score call, on the
// batcher's goroutine: i is the row's index in that call. What it appends is JSON
// members each starting with a comma, inserted into the prediction after "model".
type Annotated interface {
	AppendFields(dst []byte, i int) []byte
}

// rowEvent is what a row keeps of its decoded event beyond the features: the id the
// outputs carry, and the numeric fields routing rules compare.
type rowEvent struct {
	id     eventID
	fields []float64 // nil unless Config.RouteFields
}

// eventID is the event's id field (Config.IDField) as the event had it.
type eventID struct {
	kind FieldType // "": no id
	i    int64
	f    float64
	s    string
}

// appendJSON appends the id as a JSON value; null when the event has none.
func (id eventID) appendJSON(dst []byte) []byte {
	switch id.kind {
	case TypeInt:
		return strconv.AppendInt(dst, id.i, 10)
	case TypeFloat:
		return strconv.AppendFloat(dst, id.f, 'g', -1, 64)
	case TypeString:
		return appendJSONString(dst, []byte(id.s))
	}
	return append(dst, "null"...)
}

// routeScratch is the operator's routing state: the id field's index, and, on the
// batcher's goroutine, each row's annotations of the batch being routed.
type routeScratch struct {
	idField   int // -1: outputs carry no id
	idType    FieldType
	nFields   int // > 0: rows keep their numeric fields for routing
	ann       annotations
	shadowAnn annotations
	shadowBy  []Scorer // the shadow scorer of each row of the batch; nil: none
	shadowRun []run
	// valBytes is the value bytes a row took in the last batch (route): the next batch's
	// buffer is sized from it, so that it does not grow by copying mid-batch.
	valBytes int
}

func (rs *routeScratch) init(cfg *Config) {
	rs.idField = -1
	if cfg.IDField != "" {
		if i := cfg.Schema.FieldIndex(cfg.IDField); i >= 0 {
			rs.idField, rs.idType = i, cfg.Schema.Fields[i].Type
		}
	}
	if rf, ok := cfg.Models.(interface{ RoutesOnFields() bool }); cfg.RouteFields || ok && rf.RoutesOnFields() {
		rs.nFields = len(cfg.Schema.Fields)
	}
}

// rowEvent keeps what the routing and the outputs need of ev; fields (Schema.Fields long
// when rules' fields are kept, else empty) is the row's share of its fetch's slab.
func (o *Operator) rowEvent(ev *Event, fields []float64) rowEvent {
	var re rowEvent
	rs := &o.rt
	if i := rs.idField; i >= 0 && ev.Has(i) {
		switch rs.idType {
		case TypeInt:
			re.id = eventID{kind: TypeInt, i: ev.Int[i]}
		case TypeFloat:
			re.id = eventID{kind: TypeFloat, f: ev.Num[i]}
		case TypeString:
			re.id = eventID{kind: TypeString, s: ev.Str[i]}
		}
	}
	if len(fields) > 0 {
		re.fields = fields
		for i := range re.fields {
			re.fields[i] = math.NaN()
			if ev.Has(i) {
				re.fields[i] = ev.Num[i]
			}
		}
	}
	return re
}

// annotations are the extra JSON members of each row of a batch, in one buffer.
type annotations struct {
	buf []byte
	at  []int32 // row i's members are buf[at[i]:at[i+1]]
}

func (a *annotations) reset(n int) {
	a.buf = a.buf[:0]
	if cap(a.at) < n+1 {
		a.at = make([]int32, n+1)
	}
	a.at = a.at[:n+1]
	clear(a.at)
}

// collect records the annotations of rows [start, end), just scored by m in one call.
func (a *annotations) collect(m Scorer, start, end int) {
	an, ok := m.(Annotated)
	for i := start; i < end; i++ {
		a.at[i] = int32(len(a.buf))
		if ok {
			a.buf = an.AppendFields(a.buf, i-start)
		}
		a.at[i+1] = int32(len(a.buf))
	}
}

func (a *annotations) of(i int) []byte {
	if a.at == nil || i+1 >= len(a.at) || a.at[i] > a.at[i+1] {
		return nil
	}
	return a.buf[a.at[i]:a.at[i+1]]
}

// markID is what a switch marker records a partition's routing by: the routing's ID when
// a Route chose the batch, else the version that scored the row.
func (c ModelChoice) markID(m Scorer) string {
	if c.Route != nil {
		return c.Route.ID
	}
	return m.Version()
}

// shadowRuns splits the batch into stretches with one shadow scorer each: the choice's
// shadow for every row, or the experiment's other arm per row (Route.Mirror).
func (o *Operator) shadowRuns(c ModelChoice, rows []row) []run {
	rs := &o.rt
	rs.shadowRun = rs.shadowRun[:0]
	if o.cfg.Topics.Shadow == "" {
		return nil
	}
	if c.Route == nil || c.Route.Mirror == nil {
		if c.Shadow == nil {
			return nil
		}
		return append(rs.shadowRun, run{0, len(rows), c.Shadow})
	}
	for i := range rows {
		var m Scorer
		if rows[i].rec != nil {
			m = c.Route.Mirror(rows[i].rec, rows[i].ev.fields)
		}
		if n := len(rs.shadowRun); n > 0 && rs.shadowRun[n-1].m == m {
			rs.shadowRun[n-1].end = i + 1
			continue
		}
		rs.shadowRun = append(rs.shadowRun, run{i, i + 1, m})
	}
	return rs.shadowRun
}
