package topics

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// Tail reads one topic from the end offsets it had when NewTail returned, outside any
// group, read_committed: every record written after NewTail returns is seen, which a
// reader resetting to the end lazily, on its first fetch, does not promise. The event API
// tails the predictions topic with one Tail per instance. Fetch is not safe for concurrent
// use; partitions added after NewTail are not read.
type Tail struct {
	cl *kgo.Client
}

// NewTail lists topic's end offsets and starts reading from them.
func NewTail(ctx context.Context, cc ClientConfig, topic string) (*Tail, error) {
	opts, err := cc.opts("tail")
	if err != nil {
		return nil, err
	}
	admCl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { start[o.Partition] = kgo.NewOffset().At(o.Offset) })
	if len(start) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions: create it first", topic)
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	return &Tail{cl: cl}, nil
}

// Fetch blocks until records arrive or ctx ends (ctx's error); io.EOF after Close.
func (t *Tail) Fetch(ctx context.Context) ([]record.Record, error) { return poll(ctx, t.cl) }

// Close stops the tail.
func (t *Tail) Close() { t.cl.Close() }
