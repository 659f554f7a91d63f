package topics

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceResult writes one record and reports where it landed and its timestamp.
func (p *Producer) ProduceResult(topic string, key, value []byte, done func(partition int32, offset int64, ts time.Time, err error)) {
	r := &kgo.Record{Topic: topic, Key: key, Value: value, Timestamp: time.Now()}
	p.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) { done(r.Partition, r.Offset, r.Timestamp, err) })
}

// CopyTopic is the Kafka ceiling of the benchmarks: the least a consume→produce job can do
// (no decoding, no model): it reads n records of from, from the start, and writes each one
// unchanged to to, until every write is acknowledged. It returns the elapsed time.
func CopyTopic(ctx context.Context, cc ClientConfig, from, to string, n int64) (time.Duration, error) {
	opts, err := cc.opts("copy")
	if err != nil {
		return 0, err
	}
	cons, err := kgo.NewClient(append(opts,
		kgo.ConsumeTopics(from),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(16<<20),
	)...)
	if err != nil {
		return 0, err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append(opts,
		kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(100_000),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
	)...)
	if err != nil {
		return 0, err
	}
	defer prod.Close()
	var acked atomic.Int64
	var failed atomic.Pointer[error]
	start := time.Now()
	var read int64
	for read < n {
		fs := cons.PollRecords(ctx, 10_000)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			if read >= n {
				return
			}
			read++
			prod.Produce(ctx, &kgo.Record{Topic: to, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
				acked.Add(1)
			})
		})
	}
	if err := prod.Flush(ctx); err != nil {
		return 0, err
	}
	if e := failed.Load(); e != nil {
		return 0, fmt.Errorf("copying: %w", *e)
	}
	return time.Since(start), nil
}

// EndOffsetsSum is the sum of the end offsets of a topic's partitions: for a topic written
// without transactions, its record count.
func (a *Admin) EndOffsetsSum(ctx context.Context, topic string) (int64, error) {
	ends, err := a.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum, nil
}

// Relay is the Kafka floor of the latency benchmark: the least a live consume→produce job
// can do. It reads from, as it is written, and for each record writes a small JSON record
// naming its source ({"source":{"partition":P,"offset":O}}) to to, with the consumer and
// producer settings of the pipeline, until ctx is done.
func Relay(ctx context.Context, cc ClientConfig, from, to string) error {
	opts, err := cc.opts("relay")
	if err != nil {
		return err
	}
	cons, err := kgo.NewClient(append(opts,
		kgo.ConsumeTopics(from),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append(opts,
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
	)...)
	if err != nil {
		return err
	}
	defer prod.Close()
	var failed atomic.Pointer[error]
	for ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		if e := failed.Load(); e != nil {
			return fmt.Errorf("relaying: %w", *e)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := fmt.Appendf(nil, `{"source":{"topic":%q,"partition":%d,"offset":%d}}`, r.Topic, r.Partition, r.Offset)
			prod.Produce(ctx, &kgo.Record{Topic: to, Key: r.Key, Value: v}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
		})
	}
	return nil
}
