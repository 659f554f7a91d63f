package sim

import (
	"context"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// The reference tables the simulator can write beside the transactions, each row with its
// own event time (valid_from, when it became true), keyed like the table:
//
//   - merchants (key terminal_id): risk_tier 0–3 and category. Every terminal has a row
//     from the day before the simulation; its tier drifts now and then, and a threat feed
//     raises a compromised terminal (scenario 2) to tier 3 one to four days after the
//     compromise starts, lowering it again after it ends.
//   - customers (key customer_id): account_open and card_issued times and card_type.
//     A compromised customer's card (scenario 3) is reissued when the compromise ends,
//     and cards are reissued at random too.
//
// Rows are written in valid_from order, most an hour (simulated) before they become true,
// a quarter of them just before the first transaction that needs them; either way each is
// acknowledged before any transaction at or after its valid_from is produced: the
// lookups' contract (docs/features.md).
var (
	merchantCategories = []string{"grocery", "fuel", "restaurant", "online", "travel"}
	cardTypes          = []string{"visa", "mastercard", "amex"}
)

// tableLead is how much earlier (simulated) than valid_from most table rows are written.
const tableLead = time.Hour

// tableRow is one row owed to a table topic.
type tableRow struct {
	topic string
	key   int64
	at    time.Time // valid_from
	lead  time.Duration
	value []byte
}

// tables generates the rows; its randomness is its own, so the transactions are the same
// with tables or without.
type tables struct {
	merchants, customers string
	rng                  *rand.Rand
	start                time.Time
	terminals, custs     int
	tier                 []int64     // each terminal's baseline tier
	opened               []time.Time // each customer's account opening
	pending              []tableRow
	inflight             labelsInFlight
	day                  int // the last day whose random updates are scheduled
}

func newTables(seed uint64, cfg Config, merchants, customers string) *tables {
	cfg.defaults()
	t := &tables{merchants: merchants, customers: customers, rng: rand.New(rand.NewPCG(seed, 0x7ab1e5)),
		start: cfg.Start, terminals: cfg.Terminals, custs: cfg.Customers, day: -1}
	t.tier = make([]int64, cfg.Terminals)
	before := cfg.Start.Add(-24 * time.Hour)
	for id := range cfg.Terminals {
		t.tier[id] = int64(t.rng.IntN(3))
		t.merchant(int64(id), before, t.tier[id], merchantCategories[t.rng.IntN(len(merchantCategories))])
	}
	t.opened = make([]time.Time, cfg.Customers)
	for id := range cfg.Customers {
		t.opened[id] = cfg.Start.Add(-time.Duration(30+t.rng.IntN(3650)) * 24 * time.Hour)
		issued := t.opened[id].Add(time.Duration(t.rng.Int64N(int64(before.Sub(t.opened[id])))))
		t.customer(int64(id), before, t.opened[id], issued)
	}
	return t
}

func (t *tables) merchant(id int64, at time.Time, tier int64, category string) {
	if t.merchants == "" {
		return
	}
	v := append([]byte(`{"terminal_id":`), strconv.FormatInt(id, 10)...)
	v = append(v, `,"valid_from":"`...)
	v = at.UTC().AppendFormat(v, time.RFC3339)
	v = append(v, `","risk_tier":`...)
	v = strconv.AppendInt(v, tier, 10)
	v = append(v, `,"category":"`...)
	v = append(append(v, category...), `"}`...)
	t.add(tableRow{topic: t.merchants, key: id, at: at, value: v})
}

func (t *tables) customer(id int64, at, opened, issued time.Time) {
	if t.customers == "" {
		return
	}
	v := append([]byte(`{"customer_id":`), strconv.FormatInt(id, 10)...)
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"valid_from", at}, {"account_open", opened}, {"card_issued", issued}} {
		v = append(append(append(v, `,"`...), f.name...), `":"`...)
		v = append(f.t.UTC().AppendFormat(v, time.RFC3339), '"')
	}
	v = append(v, `,"card_type":"`...)
	v = append(append(v, cardTypes[t.rng.IntN(len(cardTypes))]...), `"}`...)
	t.add(tableRow{topic: t.customers, key: id, at: at, value: v})
}

func (t *tables) add(r tableRow) {
	r.at = r.at.Truncate(time.Second) // as written: RFC 3339 in whole seconds
	r.lead = tableLead
	if t.rng.IntN(4) == 0 {
		r.lead = 0
	}
	i := sort.Search(len(t.pending), func(i int) bool { return t.pending[i].at.After(r.at) })
	t.pending = append(t.pending, tableRow{})
	copy(t.pending[i+1:], t.pending[i:])
	t.pending[i] = r
}

// schedule turns the scenarios started and the random updates of day d+1 into rows.
func (t *tables) schedule(g *Generator) {
	day := func(d int) time.Time { return t.start.AddDate(0, 0, d) }
	for _, c := range g.TakeCompromises() {
		if c.Terminal {
			raised := day(c.Day + 1).Add(time.Duration(t.rng.Int64N(int64(72 * time.Hour))))
			t.merchant(c.ID, raised, 3, merchantCategories[int(c.ID)%len(merchantCategories)])
			t.merchant(c.ID, day(c.Until).Add(time.Duration(t.rng.Int64N(int64(48*time.Hour)))), t.tier[c.ID], merchantCategories[int(c.ID)%len(merchantCategories)])
			continue
		}
		reissued := day(c.Until).Add(time.Duration(t.rng.Int64N(int64(48 * time.Hour))))
		t.customer(c.ID, reissued, t.opened[c.ID], reissued)
	}
	for t.day < g.Day()+1 {
		t.day++
		for id := range t.terminals {
			if t.rng.IntN(60) == 0 {
				t.tier[id] = int64(t.rng.IntN(3))
				t.merchant(int64(id), day(t.day+1).Add(time.Duration(t.rng.Int64N(int64(24*time.Hour)))), t.tier[id], merchantCategories[t.rng.IntN(len(merchantCategories))])
			}
		}
		for id := range t.custs {
			if t.rng.IntN(365) == 0 {
				at := day(t.day + 1).Add(time.Duration(t.rng.Int64N(int64(24 * time.Hour))))
				t.customer(int64(id), at, t.opened[id], at)
			}
		}
	}
}

// before writes the rows due (within their lead) for a transaction at now, in valid_from
// order, and waits until every row true at or before now is acknowledged.
func (t *tables) before(ctx context.Context, p RawProducer, g *Generator, now time.Time, ack func(error)) (int64, error) {
	t.schedule(g)
	var n int64
	for len(t.pending) > 0 && !t.pending[0].at.After(now.Add(t.pending[0].lead)) {
		r := t.pending[0]
		b := t.inflight.begin(r.at)
		b.pending.Add(1)
		p.ProduceRaw(r.topic, strconv.AppendInt(nil, r.key, 10), r.value, nil, func(err error) { ack(err); b.done() })
		b.done()
		t.pending = t.pending[1:]
		n++
	}
	return n, t.inflight.await(ctx, now)
}
