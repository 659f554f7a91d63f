package topics

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// Produce implements pipeline.Sink. The record's timestamp is the produce time.
func (p *Producer) Produce(out *record.Output, ack func(error)) {
	p.cl.Produce(context.Background(), toKgo(out), func(_ *kgo.Record, err error) { ack(err) })
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
