package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
)

// tableRow is one row of a generated table, as an independent join sees it.
type tableRow struct {
	key       int64
	t         int64 // valid from, unix ns
	part      int32
	off       int64
	tier      int64
	category  string
	openedAt  int64
	card      string
	hasOpened bool
}

// pitFixture is a generated input log and two table topics.
type pitFixture struct {
	events    []Record
	merchants []Record
	customers []Record
	mRows     []tableRow // good rows only
	cRows     []tableRow
	badRows   int
}

var (
	lookupStart = time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
	categories  = []string{"grocery", "travel", "online", "fuel"}
	cards       = []string{"visa", "mastercard", "amex"}
)

// genPIT makes nEvents events over 60 days on 4 partitions, a merchants table (terminals
// 0..199, terminals 190..199 never listed, about 6 versions each) and a customers table
// (about 6 versions each), both in event-time order per partition, with some rows that
// fail validation. Many versions become true minutes before events that need them.
func genPIT(seed uint64, nEvents int) *pitFixture {
	rng := rand.New(rand.NewPCG(seed, 7))
	span := int64(60 * day)
	f := &pitFixture{}
	type ev struct {
		t          int64
		cust, term int64
	}
	evs := make([]ev, nEvents)
	for i := range evs {
		evs[i] = ev{t: lookupStart.UnixNano() + rng.Int64N(span), cust: rng.Int64N(500), term: rng.Int64N(200)}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].t < evs[j].t })
	offs := map[int32]int64{}
	for i, e := range evs {
		p := int32(e.cust % 4)
		v := fmt.Sprintf(`{"transaction_id":%d,"tx_datetime":%q,"customer_id":%d,"terminal_id":%d,"tx_amount":%d.25}`,
			i, time.Unix(0, e.t).UTC().Format(time.RFC3339Nano), e.cust, e.term, i%500)
		f.events = append(f.events, Record{Topic: "tx", Partition: p, Offset: offs[p], Key: []byte(fmt.Sprint(e.cust)), Value: []byte(v), Timestamp: time.Unix(0, e.t)})
		offs[p]++
	}
	// A version's time: mostly anywhere in the period (and before it), sometimes a few
	// minutes before a random event of the key's, so that it lands between events.
	vtime := func() int64 {
		switch rng.IntN(6) {
		case 0, 1:
			return evs[rng.IntN(len(evs))].t - rng.Int64N(int64(10*time.Minute))
		case 2: // true from the very instant of an event: it counts for that event
			return evs[rng.IntN(len(evs))].t
		}
		return lookupStart.UnixNano() - int64(10*day) + rng.Int64N(span+int64(10*day))
	}
	var mr, cr []tableRow
	for term := int64(0); term < 190; term++ {
		for range 2 + rng.IntN(9) {
			mr = append(mr, tableRow{key: term, t: vtime(), tier: rng.Int64N(4), category: categories[rng.IntN(4)]})
		}
		if term%7 == 0 { // a tie: two versions true from the same instant; the later in the log wins
			r := mr[len(mr)-1]
			r.tier = 9
			mr = append(mr, r)
		}
	}
	for cust := int64(0); cust < 500; cust++ {
		for range 2 + rng.IntN(9) {
			r := tableRow{key: cust, t: vtime(), card: cards[rng.IntN(3)]}
			if rng.IntN(10) != 0 {
				r.hasOpened, r.openedAt = true, r.t-rng.Int64N(int64(900*day))
			}
			cr = append(cr, r)
		}
	}
	f.merchants, f.mRows = f.tableLog(rng, "merchants", mr, func(r tableRow) string {
		return fmt.Sprintf(`{"terminal_id":%d,"valid_from":%q,"risk_tier":%d,"category":%q}`, r.key, rfc(r.t), r.tier, r.category)
	})
	f.customers, f.cRows = f.tableLog(rng, "customers", cr, func(r tableRow) string {
		opened := ""
		if r.hasOpened {
			opened = fmt.Sprintf(`,"account_open":%q`, rfc(r.openedAt))
		}
		return fmt.Sprintf(`{"customer_id":%d,"valid_from":%q,"card_type":%q%s}`, r.key, rfc(r.t), r.card, opened)
	})
	return f
}

func rfc(t int64) string { return time.Unix(0, t).UTC().Format(time.RFC3339Nano) }

// tableLog writes rows to 2 partitions by key, each in time order (stable: ties keep
// their order), with a bad row now and then; it returns the log and the good rows with
// their positions.
func (f *pitFixture) tableLog(rng *rand.Rand, topic string, rows []tableRow, enc func(tableRow) string) ([]Record, []tableRow) {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].t < rows[j].t })
	var log []Record
	var good []tableRow
	offs := map[int32]int64{}
	for _, r := range rows {
		r.part = int32(r.key % 2)
		if rng.IntN(200) == 0 {
			bad := `{"terminal_id":1,"customer_id":1,"valid_from":"yesterday"}`
			if rng.IntN(2) == 0 {
				bad = `{"terminal_id":-5,"customer_id":-5,"valid_from":"2018-04-01T00:00:00Z","risk_tier":1}`
			}
			log = append(log, Record{Topic: topic, Partition: r.part, Offset: offs[r.part], Value: []byte(bad)})
			offs[r.part]++
			f.badRows++
		}
		r.off = offs[r.part]
		log = append(log, Record{Topic: topic, Partition: r.part, Offset: r.off, Key: []byte(fmt.Sprint(r.key)), Value: []byte(enc(r))})
		offs[r.part]++
		good = append(good, r)
	}
	return log, good
}

const lookupFeaturesYAML = `
- {name: TX_AMOUNT, field: tx_amount}
- {name: MERCHANT_RISK_TIER, lookup: {table: merchants, key: terminal_id, field: risk_tier, default: 0}}
- {name: MERCHANT_CATEGORY, lookup: {table: merchants, key: terminal_id, field: category, transform: index, vocabulary: [grocery, travel, online], default: -1}}
- {name: CARD, lookup: {table: customers, key: customer_id, field: card_type, transform: one_hot, vocabulary: [visa, mastercard]}}
- {name: CUSTOMER_ACCOUNT_AGE_DAYS, lookup: {table: customers, key: customer_id, field: account_open, transform: age_days, default: -1}}
`

func lookupTables(t testing.TB) []*TableConfig {
	t.Helper()
	tabs := []*TableConfig{
		{Name: "merchants", Topic: "merchants", KeyField: "terminal_id", EventTime: "valid_from", DeadLetter: "merchants.dlq", IdleTimeout: 5 * time.Millisecond,
			Fields: []Field{
				{Name: "terminal_id", Type: TypeInt, Required: true, Min: ptr(0)},
				{Name: "valid_from", Type: TypeTime, Required: true},
				{Name: "risk_tier", Type: TypeInt, Required: true, Min: ptr(0)},
				{Name: "category", Type: TypeString},
			}},
		{Name: "customers", Topic: "customers", KeyField: "customer_id", EventTime: "valid_from", DeadLetter: "customers.dlq", IdleTimeout: 5 * time.Millisecond,
			Fields: []Field{
				{Name: "customer_id", Type: TypeInt, Required: true, Min: ptr(0)},
				{Name: "valid_from", Type: TypeTime, Required: true},
				{Name: "card_type", Type: TypeString, Required: true},
				{Name: "account_open", Type: TypeTime},
			}},
	}
	for _, tc := range tabs {
		if err := tc.Compile(); err != nil {
			t.Fatal(err)
		}
	}
	return tabs
}

func lookupSpec(t testing.TB) (*Schema, *FeatureSpec) {
	t.Helper()
	var feats []Feature
	if err := yaml.Unmarshal([]byte(lookupFeaturesYAML), &feats); err != nil {
		t.Fatal(err)
	}
	fs := &FeatureSpec{Features: ExpandLookups(feats), Tables: lookupTables(t)}
	s := referenceSchema(t)
	if err := fs.Compile(s); err != nil {
		t.Fatal(err)
	}
	return s, fs
}

// pitJoin is the independent point-in-time join: for each event, the latest good row of
// its key with time at or before the event's (the later in the log on a tie), scanned
// from scratch.
func pitJoin(t *testing.T, s *Schema, f *pitFixture) map[srcID][]float32 {
	t.Helper()
	latest := func(rows []tableRow, key, at int64) *tableRow {
		var best *tableRow
		for i := range rows {
			r := &rows[i]
			if r.key == key && r.t <= at && (best == nil || r.t > best.t || r.t == best.t && r.off > best.off) {
				best = r
			}
		}
		return best
	}
	byKey := func(rows []tableRow) map[int64][]tableRow {
		m := map[int64][]tableRow{}
		for _, r := range rows {
			m[r.key] = append(m[r.key], r)
		}
		return m
	}
	mk, ck := byKey(f.mRows), byKey(f.cRows)
	dec := NewDecoder(s)
	ev := dec.NewEvent()
	out := map[srcID][]float32{}
	for _, r := range f.events {
		if err := dec.Decode(r.Value, r.Timestamp, ev); err != nil {
			t.Fatal(err)
		}
		at := ev.Time.UnixNano()
		row := []float32{float32(ev.Num[4]), 0, -1, 0, 0, -1}
		if m := latest(mk[ev.Int[3]], ev.Int[3], at); m != nil {
			row[1] = float32(m.tier)
			if i := index(categories[:3], m.category); i >= 0 {
				row[2] = float32(i)
			}
		}
		if c := latest(ck[ev.Int[2]], ev.Int[2], at); c != nil {
			row[3] = b2f(c.card == "visa")
			row[4] = b2f(c.card == "mastercard")
			if c.hasOpened {
				row[5] = float32(float64(at-c.openedAt) / float64(24*time.Hour))
			}
		}
		out[srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}] = row
	}
	return out
}

func index(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func b2f(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

// dlqSink records predictions' features and counts table dead letters by class. It
// reads the features out of the prediction's JSON by hand: reflection-based decoding of
// 50,000 predictions dominated the test's time under -race.
type dlqSink struct {
	mu      sync.Mutex
	feats   map[srcID][]float32
	classes map[string]int
	bad     int // predictions whose features do not parse
}

func predictionFeatures(v []byte) ([]float32, bool) {
	const key = `"features":[`
	i := bytes.Index(v, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := v[i+len(key):]
	end := bytes.IndexByte(rest, ']')
	if end < 0 {
		return nil, false
	}
	var out []float32
	for _, s := range bytes.Split(rest[:end], []byte(",")) {
		x, err := strconv.ParseFloat(string(s), 32)
		if err != nil {
			return nil, false
		}
		out = append(out, float32(x))
	}
	return out, true
}

func (k *dlqSink) Produce(out *Output, ack func(error)) {
	if strings.HasSuffix(out.Topic, ".dlq") {
		k.mu.Lock()
		for _, h := range out.Headers {
			if h.Key == record.HeaderErrorClass {
				k.classes[out.Topic+":"+string(h.Value)]++
			}
		}
		k.mu.Unlock()
		ack(nil)
		return
	}
	if out.Topic == "preds" {
		f, ok := predictionFeatures(out.Value)
		k.mu.Lock()
		if ok {
			k.feats[srcID{TopicPartition{Topic: out.Source.Topic, Partition: out.Source.Partition}, out.Source.Offset}] = f
		} else {
			k.bad++
		}
		k.mu.Unlock()
	}
	ack(nil)
}

func (k *dlqSink) Flush(context.Context) error { return nil }

// TestLookupsEqualIndependentJoin: the operator's lookups equal a point-in-time join
// written here, on 50,000 events and about 6 versions per key, with the tables read live
// in small random chunks (versions arrive while events that need them are in flight,
// and events wait for them), keys absent from the table taking the default, and every
// bad table row dead-lettered with its class.
func TestLookupsEqualIndependentJoin(t *testing.T) {
	f := genPIT(11, 50_000)
	s, fs := lookupSpec(t)
	perKey := float64(len(f.mRows)+len(f.cRows)) / (190 + 500)
	if perKey < 5 {
		t.Fatalf("fixture has %.1f versions per key, want >= 5", perKey)
	}
	want := pitJoin(t, s, f)
	rng := rand.New(rand.NewPCG(3, 4))
	sink := &dlqSink{feats: map[srcID][]float32{}, classes: map[string]int{}}
	m := NewMetrics(nil)
	op, err := New(Config{
		Schema: s, Features: fs, Model: FeaturesOnly{N: fs.Len()},
		Topics: Topics{Predictions: "preds", DeadLetter: "dlq"}, Batch: scorer.BatcherConfig{MaxSize: 64},
		Tables: map[string]FeedbackSource{
			"merchants": &memFeedback{recs: f.merchants, rng: rng, live: true},
			"customers": &memFeedback{recs: f.customers, rng: rng, live: true},
		},
		TableDeadLetters: true, IncludeFeatures: true, Metrics: m, Logger: zap.NewNop(),
	}, &sliceSource{recs: f.events}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(sink.feats) != len(want) || sink.bad > 0 {
		t.Fatalf("%d predictions (%d without readable features), want %d", len(sink.feats), sink.bad, len(want))
	}
	diffs, defaults := 0, 0
	for id, w := range want {
		g := sink.feats[id]
		if w[1] == 0 && w[3] == 0 && w[4] == 0 {
			defaults++
		}
		for i := range w {
			if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
				if diffs++; diffs <= 5 {
					t.Errorf("%v: feature %s = %v, the point-in-time join says %v", id, fs.Names()[i], g[i], w[i])
				}
			}
		}
	}
	if diffs > 0 {
		t.Fatalf("%d feature values differ from the independent join", diffs)
	}
	if defaults == 0 {
		t.Error("no event took the defaults: the fixture misses absent keys")
	}
	n := 0
	for _, c := range sink.classes {
		n += c
	}
	if n != f.badRows || sink.classes["merchants.dlq:"+string(ClassOutOfRange)]+sink.classes["customers.dlq:"+string(ClassOutOfRange)] == 0 {
		t.Errorf("table dead letters by class %v, want %d in all, with out_of_range among them", sink.classes, f.badRows)
	}
}

// TestLookupSpecWiderThanModelIsRefused: a model narrower than the spec (a lookup added
// for a model not trained yet) is refused with the model's width; export runs such a
// spec with FeaturesOnly, which takes any width.
func TestLookupSpecWiderThanModelIsRefused(t *testing.T) {
	s, fs := lookupSpec(t)
	_, err := New(Config{Schema: s, Features: fs, Model: FeaturesOnly{N: 3}, Topics: Topics{Predictions: "p", DeadLetter: "d"},
		Batch: scorer.BatcherConfig{MaxSize: 8}, Tables: map[string]FeedbackSource{"merchants": &memFeedback{}, "customers": &memFeedback{}}},
		&sliceSource{}, newRecordingSink())
	if err == nil || !strings.Contains(err.Error(), "takes 3 inputs") || !strings.Contains(err.Error(), "MERCHANT_RISK_TIER") {
		t.Fatalf("a spec of %d features on a model of 3: %v", fs.Len(), err)
	}
}

// TestTableOverMaxRowsStops: a table that outgrows max_rows stops the operator with an
// error naming the bound, rather than growing without one.
func TestTableOverMaxRowsStops(t *testing.T) {
	f := genPIT(5, 300)
	s, fs := lookupSpec(t)
	fs.Tables[0].MaxRows = 100
	rng := rand.New(rand.NewPCG(1, 2))
	op, err := New(Config{
		Schema: s, Features: fs, Model: FeaturesOnly{N: fs.Len()},
		Topics: Topics{Predictions: "preds", DeadLetter: "dlq"}, Batch: scorer.BatcherConfig{MaxSize: 64},
		Tables: map[string]FeedbackSource{
			"merchants": &memFeedback{recs: f.merchants, rng: rng},
			"customers": &memFeedback{recs: f.customers, rng: rng},
		}, Logger: zap.NewNop(),
		DrainTimeout: 10 * time.Millisecond, // the records fetched before the error are never scored: no drain to wait for
	}, &sliceSource{recs: f.events}, newRecordingSink())
	if err != nil {
		t.Fatal(err)
	}
	err = op.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "tables.merchants.max_rows") {
		t.Fatalf("a table of over 1,000 rows under max_rows 100: %v", err)
	}
}
