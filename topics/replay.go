package topics

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// ReplayOptions bound a replay.
type ReplayOptions struct {
	Topics []string
	// From is the first record time to replay; zero replays from the earliest offset.
	From time.Time
	// MaxPollRecords bounds one Fetch (default 20000); FetchMaxBytes one fetch response
	// (default 64 MiB): a backfill prefers large batches.
	MaxPollRecords int
	FetchMaxBytes  int32
}

// Replay reads every partition of its topics from the earliest offset (or the first at or
// after From) up to the end offsets captured when it was created, then returns io.EOF: a
// bounded source for backfills and audits, outside any group, committing nothing. It reads
// read_committed and keeps control records internally, so partitions that end in a
// transaction marker, which a client never sees as data, still end. It implements
// pipeline.Source; Fetch is not safe for concurrent use.
type Replay struct {
	cl      *kgo.Client
	max     int
	end     map[string]map[int32]int64 // exclusive end of each partition still open
	total   int64
	open    int
	fetched atomic.Int64
}

// NewReplay captures the start and end offsets and prepares the consumer.
func NewReplay(ctx context.Context, cc ClientConfig, o ReplayOptions) (*Replay, error) {
	if len(o.Topics) == 0 {
		return nil, fmt.Errorf("replay: no topics")
	}
	if o.MaxPollRecords <= 0 {
		o.MaxPollRecords = 20_000
	}
	if o.FetchMaxBytes <= 0 {
		o.FetchMaxBytes = 64 << 20
	}
	adm, err := NewAdmin(cc)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	// The end is the last stable offset: what a read_committed consumer can reach now.
	var ends, starts kadm.ListedOffsets
	err = WithinFailover(ctx, cc, "replay: listing end offsets", func(ctx context.Context) (err error) {
		ends, err = listed(adm.adm.ListCommittedOffsets(ctx, o.Topics...))
		return err
	})
	if err != nil {
		return nil, err
	}
	err = WithinFailover(ctx, cc, "replay: listing start offsets", func(ctx context.Context) (err error) {
		if o.From.IsZero() {
			starts, err = listed(adm.adm.ListStartOffsets(ctx, o.Topics...))
		} else {
			starts, err = listed(adm.adm.ListOffsetsAfterMilli(ctx, o.From.UnixMilli(), o.Topics...))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	r := &Replay{max: o.MaxPollRecords, end: map[string]map[int32]int64{}}
	consume := map[string]map[int32]kgo.Offset{}
	for _, t := range o.Topics {
		if _, ok := ends[t]; !ok {
			return nil, fmt.Errorf("replay: topic %s does not exist", t)
		}
	}
	ends.Each(func(e kadm.ListedOffset) {
		s, ok := starts.Lookup(e.Topic, e.Partition)
		start := int64(0)
		if ok {
			start = s.Offset
		}
		if start < 0 || start >= e.Offset { // empty, or nothing at or after From
			return
		}
		if consume[e.Topic] == nil {
			consume[e.Topic] = map[int32]kgo.Offset{}
			r.end[e.Topic] = map[int32]int64{}
		}
		consume[e.Topic][e.Partition] = kgo.NewOffset().At(start)
		r.end[e.Topic][e.Partition] = e.Offset
		r.total += e.Offset - start
		r.open++
	})
	if r.open == 0 {
		return r, nil
	}
	opts, err := cc.opts("replay")
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(o.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(o.FetchMaxBytes/4),
	)
	if r.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, err
	}
	return r, nil
}

// Total is the number of offsets in the replayed ranges: an upper bound on the records
// (transaction markers and aborted records take offsets too).
func (r *Replay) Total() int64 { return r.total }

// Fetched is the number of data records returned so far.
func (r *Replay) Fetched() int64 { return r.fetched.Load() }

// Fetch implements pipeline.Source.
func (r *Replay) Fetch(ctx context.Context) ([]record.Record, error) {
	for r.open > 0 {
		fs := r.cl.PollRecords(ctx, r.max)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fs.IsClientClosed() {
			return nil, io.EOF
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("replay: fetching %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		out := make([]record.Record, 0, fs.NumRecords())
		var done map[string][]int32
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			ends := r.end[p.Topic]
			end, open := ends[p.Partition]
			if !open {
				return // finished earlier; records past the end are ignored
			}
			for _, rec := range p.Records {
				if rec.Offset >= end {
					break
				}
				if !rec.Attrs.IsControl() {
					out = append(out, fromKgo(rec))
				}
				if rec.Offset == end-1 {
					delete(ends, p.Partition)
					r.open--
					if done == nil {
						done = map[string][]int32{}
					}
					done[p.Topic] = append(done[p.Topic], p.Partition)
					break
				}
			}
		})
		if done != nil {
			r.cl.PauseFetchPartitions(done)
		}
		r.fetched.Add(int64(len(out)))
		if r.open == 0 {
			return out, io.EOF
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, io.EOF
}

// Close releases the consumer.
func (r *Replay) Close() {
	if r.cl != nil {
		r.cl.Close()
	}
}
