package sim

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// ProduceOptions say what Produce writes, where, and how fast.
type ProduceOptions struct {
	Events      int
	Rate        float64 // events/s; 0: as fast as possible
	Seed        uint64
	BadFraction float64
	Topic       string
	Labels      string // "" : no labels
	// LabelDelay: a transaction's label is due once the simulated clock has passed its time
	// by this much (the handbook's feedback delay); default 7 days. It is written labelLead
	// before it is due, and acknowledged before the first event at or past its due time.
	LabelDelay time.Duration
	// Stream, when set, continues an earlier call's simulation (Seed and BadFraction are
	// then ignored); HoldLabels keeps the labels not yet due for the next call instead of
	// writing them all at the end.
	Stream     *Stream
	HoldLabels bool
	// Days, when > 0, stops at the first transaction of that simulated day instead.
	Days int
	// Merchants and Customers, when set, are the topics of the reference tables
	// (tables.go), written beside the transactions.
	Merchants, Customers string
	// Encode, when set, writes each event's value instead of AppendEvent's JSON (a
	// schema-registry wire format: wireformat.go); BadFraction then corrupts its bytes.
	Encode Encoder
}

// Stream is the simulator with the labels it still owes.
type Stream struct {
	gen     *Generator
	bad     *Corruptor
	pending []Tx    // transactions whose labels are not yet due, in time order
	tables  *tables // nil: no reference tables
}

// NewStream starts a simulation with malformed events mixed in at badFraction.
func NewStream(seed uint64, badFraction float64) *Stream {
	return NewStreamOf(Config{Seed: seed}, badFraction)
}

// NewStreamOf is NewStream with the simulator's other parameters too (e.g. a smaller
// population, for a test's smaller sample); the corruption is seeded by cfg.Seed.
func NewStreamOf(cfg Config, badFraction float64) *Stream {
	return &Stream{gen: New(cfg), bad: NewCorruptor(cfg.Seed, badFraction)}
}

// ProduceResult counts what Produce wrote.
type ProduceResult struct {
	Events, Bad, Labels int64
	TableRows           int64
	Elapsed             time.Duration
}

// RawProducer is what Produce needs of a Kafka producer.
type RawProducer interface {
	ProduceRaw(topic string, key, value []byte, headers map[string]string, ack func(error))
	Flush(ctx context.Context) error
}

// Produce writes generated events (and their labels) and waits for every ack.
// progress, when not nil, is incremented per event handed to the producer.
func Produce(ctx context.Context, p RawProducer, o ProduceOptions, progress *atomic.Int64) (ProduceResult, error) {
	var res ProduceResult
	st := o.Stream
	if st == nil {
		st = NewStream(o.Seed, o.BadFraction)
	}
	if o.LabelDelay <= 0 {
		o.LabelDelay = 7 * 24 * time.Hour
	}
	var inflight labelsInFlight
	var failed atomic.Pointer[error]
	ack := func(err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now()
	for i := 0; i < o.Events || o.Days > 0; i++ {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if e := failed.Load(); e != nil {
				return res, fmt.Errorf("producing events: %w", *e)
			}
		}
		if err := pace(ctx, start, i, o.Rate); err != nil {
			return res, err
		}
		tx := st.gen.Next()
		if o.Days > 0 && st.gen.Day() >= o.Days {
			break
		}
		err := st.before(ctx, p, o, tx.Time, ack, &inflight, &res)
		if err == nil {
			err = st.produceEvent(p, &o, tx, ack, &res)
		}
		if err != nil {
			return res, err
		}
		if progress != nil {
			progress.Add(1)
		}
	}
	if !o.HoldLabels {
		// The simulation stops here; its clock runs on past the last labels' due times.
		for i := range st.pending {
			p.ProduceRaw(o.Labels, st.pending[i].Key(), st.pending[i].AppendLabel(make([]byte, 0, 160)), nil, ack)
			res.Labels++
		}
		st.pending = nil
	}
	if err := p.Flush(ctx); err != nil {
		return res, fmt.Errorf("flushing events: %w", err)
	}
	if e := failed.Load(); e != nil {
		return res, fmt.Errorf("producing events: %w", *e)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// pace waits until event i is due at rate events per second from start (0: never waits).
func pace(ctx context.Context, start time.Time, i int, rate float64) error {
	if rate <= 0 {
		return nil
	}
	d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second))))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// before writes what a transaction at t needs acknowledged first: the labels due, and the
// reference-table rows true at t (tables.go), counting them into res.
func (s *Stream) before(ctx context.Context, p RawProducer, o ProduceOptions, t time.Time, ack func(error), inflight *labelsInFlight, res *ProduceResult) error {
	n, err := s.labelsBefore(ctx, p, o, t, ack, inflight)
	res.Labels += n
	if err != nil {
		return err
	}
	if s.tables == nil && (o.Merchants != "" || o.Customers != "") {
		s.tables = newTables(s.gen.cfg.Seed, s.gen.cfg, o.Merchants, o.Customers)
	}
	if s.tables == nil {
		return nil
	}
	n, err = s.tables.before(ctx, p, s.gen, t, ack)
	res.TableRows += n
	return err
}

// labelsBefore writes the labels due for an event at t, labelLead early, and waits until
// every label that event needs is acknowledged (see labelsInFlight). Nothing without a
// labels topic.
func (s *Stream) labelsBefore(ctx context.Context, p RawProducer, o ProduceOptions, t time.Time, ack func(error), inflight *labelsInFlight) (int64, error) {
	if o.Labels == "" {
		return 0, nil
	}
	n := s.writeDue(p, o.Labels, t.Add(labelLead-o.LabelDelay), ack, inflight)
	return n, inflight.await(ctx, t.Add(-o.LabelDelay))
}

// writeDue writes the owed labels of transactions at or before cutoff, in time order, so
// that each labels partition is in time order, as one batch of inflight; it returns how
// many it wrote.
func (s *Stream) writeDue(p RawProducer, topic string, cutoff time.Time, ack func(error), inflight *labelsInFlight) int64 {
	if len(s.pending) == 0 || s.pending[0].Time.After(cutoff) {
		return 0
	}
	b := inflight.begin(s.pending[0].Time)
	var n int64
	for len(s.pending) > 0 && !s.pending[0].Time.After(cutoff) {
		l := &s.pending[0]
		b.pending.Add(1)
		p.ProduceRaw(topic, l.Key(), l.AppendLabel(make([]byte, 0, 160)), nil, func(err error) { ack(err); b.done() })
		s.pending = s.pending[1:]
		n++
	}
	b.done() // begin's guard
	return n
}

// labelLead is how much earlier (in simulated time) than due a label is written, so that
// it is acknowledged long before the first event that needs it is produced. A simulated
// day is some ten thousand events. An hour was too little in flood mode under the race
// detector: the wait blocked often, each block cut the producer's batches short, and the
// skew audit ran for over 18 minutes instead of 8 (small lz4 batches are what the race
// detector makes expensive). With a day it takes about 9.
const labelLead = 24 * time.Hour

// labelsInFlight keeps the simulator to the feedback join's contract: a label is
// acknowledged by Kafka before any event that needs it is produced. Handing the label to
// the producer first is not enough: the label and the event go to different partitions,
// which the broker may append in either order (both in one produce request, say), and a
// live pipeline that fetched the event and found the labels partition caught up before
// the label's append scores it without the label, while a backfill sees it: a skew the
// audit test caught, rarely, on a loaded machine. Writing labels labelLead early makes the
// wait almost always zero.
type labelsInFlight struct {
	batches []*labelBatch // in the order written: their first label times ascend
}

// labelBatch is the labels one writeDue call wrote.
type labelBatch struct {
	first   time.Time     // the earliest label's transaction time
	pending atomic.Int64  // labels not yet acknowledged, plus begin's guard until written
	acked   chan struct{} // closed when pending reaches 0
}

func (b *labelBatch) done() {
	if b.pending.Add(-1) == 0 {
		close(b.acked)
	}
}

func (f *labelsInFlight) begin(first time.Time) *labelBatch {
	b := &labelBatch{first: first, acked: make(chan struct{})}
	b.pending.Store(1)
	f.batches = append(f.batches, b)
	return b
}

// await returns once every batch holding a label at or before need is acknowledged.
func (f *labelsInFlight) await(ctx context.Context, need time.Time) error {
	for len(f.batches) > 0 && !f.batches[0].first.After(need) {
		select {
		case <-f.batches[0].acked:
			f.batches = f.batches[1:]
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Next returns the stream's next transaction for a caller that produces by itself (a
// latency probe): it first hands label the transactions whose labels are due (at least
// delay older than the new one), in time order, and then owes the new one's label. A
// nil label: the stream owes no labels.
func (s *Stream) Next(delay time.Duration, label func(*Tx)) Tx {
	tx := s.gen.Next()
	if label == nil {
		return tx
	}
	for len(s.pending) > 0 && !s.pending[0].Time.Add(delay).After(tx.Time) {
		label(&s.pending[0])
		s.pending = s.pending[1:]
	}
	s.pending = append(s.pending, tx)
	return tx
}

// encode is an event's value: AppendEvent's JSON, or o.Encode's.
func (o *ProduceOptions) encode(tx *Tx) ([]byte, error) {
	if o.Encode == nil {
		return tx.AppendEvent(make([]byte, 0, 128)), nil
	}
	val, err := o.Encode(make([]byte, 0, 128), tx)
	if err != nil {
		return nil, fmt.Errorf("encoding event %d: %w", tx.ID, err)
	}
	return val, nil
}

// produceEvent writes tx (encoded, maybe corrupted) and counts it; its label is owed
// unless it was corrupted.
func (s *Stream) produceEvent(p RawProducer, o *ProduceOptions, tx Tx, ack func(error), res *ProduceResult) error {
	val, err := o.encode(&tx)
	if err != nil {
		return err
	}
	val, kind := s.bad.Maybe(val)
	p.ProduceRaw(o.Topic, tx.Key(), val, nil, ack)
	res.Events++
	if kind != "" {
		res.Bad++
	} else if o.Labels != "" {
		s.pending = append(s.pending, tx)
	}
	return nil
}
