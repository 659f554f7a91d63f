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

// inflight counts the records produced and not yet acknowledged, so that Flush can keep
// the pipeline.Sink contract: franz-go's Client.Flush waits for the records that reached
// its buffer, but a record refused before it (a transactional client outside a
// transaction, a closed client, a record too large) has its promise called on another
// goroutine that Flush does not wait for. The zero value is ready; safe for concurrent use.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n reached 0; nil before the first record
}

// produce hands r to produce (a franz-go Produce) and counts it until its promise ran ack,
// with a failure classified as a *record.WriteError (writeError).
func (f *inflight) produce(produce func(context.Context, *kgo.Record, func(*kgo.Record, error)), r *kgo.Record, ack func(error)) {
	f.mu.Lock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
	produce(context.Background(), r, func(_ *kgo.Record, err error) {
		if ack != nil {
			ack(writeError(r.Topic, err))
		}
		f.mu.Lock()
		f.n--
		if f.n == 0 {
			close(f.idle)
		}
		f.mu.Unlock()
	})
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
