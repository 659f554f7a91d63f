package topics

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// ProduceResultHeaders is ProduceResult with record headers (an event of the HTTP front
// door that asks for its explanation carries one).
func (p *Producer) ProduceResultHeaders(topic string, key, value []byte, headers []record.Header, done func(partition int32, offset int64, ts time.Time, err error)) {
	r := &kgo.Record{Topic: topic, Key: key, Value: value, Timestamp: time.Now()}
	for _, h := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	p.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) { done(r.Partition, r.Offset, r.Timestamp, err) })
}
