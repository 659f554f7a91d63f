package topics

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// Produce implements pipeline.Sink. The record's timestamp is the produce time. A failed
// ack carries a *record.WriteError: record.IsTransient says whether waiting helps.
func (p *Producer) Produce(out *record.Output, ack func(error)) {
	p.acks.produce(p.cl.Produce, toKgo(out), ack)
}

// ProduceAck implements record.AckProducer: Produce without an allocation per output.
func (p *Producer) ProduceAck(out *record.Output, a record.Acker) {
	p.acks.produceOutput(p.cl.Produce, out, a)
}

// outRecord is one output on its way to Kafka: its franz-go record, room for the headers
// an operator's outputs carry (a prediction has one), and whom to tell. They are
// pooled with their promise bound once, so that an output costs no allocation: toKgo, its
// headers and a promise closure were three. A record goes back to the pool in its
// promise, which is franz-go's last use of it (kgo's finishRecordPromise reads nothing of
// the record after calling the promise; the hooks run before it).
type outRecord struct {
	rec     kgo.Record
	hdrs    [2]kgo.RecordHeader
	ack     record.Acker
	f       *inflight
	promise func(*kgo.Record, error) // done, bound once
}

// produceOutput is produce for an output whose acknowledgement goes to a: the record, its
// headers and its promise come from f's pool.
func (f *inflight) produceOutput(produce func(context.Context, *kgo.Record, func(*kgo.Record, error)), out *record.Output, a record.Acker) {
	r, _ := f.records.Get().(*outRecord)
	if r == nil {
		r = &outRecord{}
		r.promise = r.done
	}
	r.rec = kgo.Record{Topic: out.Topic, Key: out.Key, Value: out.Value}
	if len(out.Headers) > 0 {
		hs := r.hdrs[:0]
		for _, h := range out.Headers {
			hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value}) // past 2: allocated
		}
		r.rec.Headers = hs
	}
	r.ack, r.f = a, f
	f.begin()
	produce(context.Background(), &r.rec, r.promise)
}

// done is an outRecord's promise: it acknowledges the output, then returns the record to
// the pool, dropping what it references (the output's slices) first.
func (r *outRecord) done(_ *kgo.Record, err error) {
	a, f, topic := r.ack, r.f, r.rec.Topic
	r.rec, r.hdrs, r.ack, r.f = kgo.Record{}, [2]kgo.RecordHeader{}, nil, nil
	f.records.Put(r)
	a.Ack(writeError(topic, err))
	f.end()
}

// inflight counts the records produced and not yet acknowledged, so that Flush can keep
// the pipeline.Sink contract: franz-go's Client.Flush waits for the records that reached
// its buffer, but a record refused before it (a transactional client outside a
// transaction, a closed client, a record too large) has its promise called on another
// goroutine that Flush does not wait for. The zero value is ready; safe for concurrent use.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n reached 0; nil before the first record

	records sync.Pool // *outRecord, for produceOutput
}

// produce hands r to produce (a franz-go Produce) and counts it until its promise ran ack,
// with a failure classified as a *record.WriteError (writeError).
func (f *inflight) produce(produce func(context.Context, *kgo.Record, func(*kgo.Record, error)), r *kgo.Record, ack func(error)) {
	f.begin()
	produce(context.Background(), r, func(_ *kgo.Record, err error) {
		if ack != nil {
			ack(writeError(r.Topic, err))
		}
		f.end()
	})
}

// begin counts a record about to be produced.
func (f *inflight) begin() {
	f.mu.Lock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
}

// end counts a record acknowledged, after its ack ran.
func (f *inflight) end() {
	f.mu.Lock()
	f.n--
	if f.n == 0 {
		close(f.idle)
	}
	f.mu.Unlock()
}

// wait returns when every record produced before the call is acknowledged, or with ctx's
// error.
func (f *inflight) wait(ctx context.Context) error {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// toKgo converts an output to a franz-go record (timestamp: set at produce time).
func toKgo(out *record.Output) *kgo.Record {
	r := &kgo.Record{Topic: out.Topic, Key: out.Key, Value: out.Value}
	if len(out.Headers) > 0 {
		r.Headers = make([]kgo.RecordHeader, len(out.Headers))
		for i, h := range out.Headers {
			r.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return r
}
