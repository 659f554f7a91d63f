package topics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/record"
)

// BoundedGroup is the source and sink of one process of a distributed backfill: the
// exactly-once TransactSession of `run` (its group, transactions and fencing, unchanged),
// bounded by a BackfillJob. A partition assigned with no committed offset starts at the
// job's start; records at or past the job's end are never scored, and their offsets are
// committed like the rest, so a partition whose committed offset reached its end is done
// and paused. Fetch returns io.EOF only when the whole job is done (every partition's
// committed offset at its end, whichever process scored it): until then the process stays
// in the group, ready to take over the partitions of a member that dies. It implements
// pipeline.Source, pipeline.Sink and pipeline.Transactional.
type BoundedGroup struct {
	*TransactSession
	job     *BackfillJob
	ranges  map[string]map[int32]JobPartition
	adm     *Admin
	reached map[string][]int32 // partitions whose end the open transaction reaches
	checked time.Time
	// Check is how often Fetch reads the group's committed offsets (default 1s).
	Check    time.Duration
	done     atomic.Int64
	complete atomic.Bool
}

// NewBoundedGroup joins o.Group (on the first Fetch) to process job. o must name the job's
// topics.
func NewBoundedGroup(cc ClientConfig, o TransactOptions, job *BackfillJob) (*BoundedGroup, error) {
	b := &BoundedGroup{job: job, ranges: job.ranges(), Check: time.Second}
	// Control records (transaction markers) are kept so that their offsets count as
	// consumed: a partition whose range ends in a marker, which a consumer never sees as
	// data, still has its committed offset reach the end. Fetch drops them.
	o.extra = append(o.extra, kgo.KeepControlRecords(), kgo.AdjustFetchOffsetsFn(b.adjust))
	ts, err := NewTransactSession(cc, o)
	if err != nil {
		return nil, err
	}
	if b.adm, err = NewAdmin(cc); err != nil {
		ts.Close()
		return nil, err
	}
	b.TransactSession = ts
	return b, nil
}

// adjust runs when partitions are assigned, with their committed offsets: one without a
// commit starts at the job's start; one at or past its end (or outside the job) is paused.
func (b *BoundedGroup) adjust(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	pause := map[string][]int32{}
	for t, ps := range offsets {
		for p, off := range ps {
			r, ok := b.ranges[t][p]
			at := off.EpochOffset().Offset
			if ok && at < 0 { // no commit yet
				ps[p] = kgo.NewOffset().At(r.Start)
				at = r.Start
			}
			if !ok || at >= r.End {
				pause[t] = append(pause[t], p)
			}
		}
	}
	if len(pause) > 0 {
		b.s.Client().PauseFetchPartitions(pause)
	}
	return offsets, nil
}

// Fetch implements pipeline.Source: it polls, keeps the records in the job's ranges, and
// begins a transaction for them. It returns io.EOF once the whole job is done.
func (b *BoundedGroup) Fetch(ctx context.Context) ([]record.Record, error) {
	for {
		b.refresh(ctx)
		if b.complete.Load() {
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A bounded wait: with nothing to fetch (its partitions done, others still
		// running) the process must still notice when the job completes.
		pctx, cancel := context.WithTimeout(ctx, b.Check)
		fs := b.s.PollRecords(pctx, b.max)
		cancel()
		if fs.IsClientClosed() {
			return nil, io.EOF
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				b.log.Warn("fetch error; franz-go retries", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
			}
		})
		if fs.NumRecords() == 0 {
			continue
		}
		recs := b.inRange(fs)
		if err := b.s.Begin(); err != nil {
			return nil, fmt.Errorf("beginning a transaction: %w", err)
		}
		if len(recs) > 0 {
			return recs, nil
		}
		// Only markers or records past the end: nothing to score, but their offsets are
		// committed, which is how a partition's committed offset reaches its end.
		if _, err := b.EndBatch(ctx); err != nil {
			return nil, err
		}
	}
}

// inRange converts the records of fs inside the job's ranges, data only, and notes the
// partitions whose end they reach.
func (b *BoundedGroup) inRange(fs kgo.Fetches) []record.Record {
	out := make([]record.Record, 0, fs.NumRecords())
	b.reached = map[string][]int32{}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		r, ok := b.ranges[p.Topic][p.Partition]
		for _, rec := range p.Records {
			if !ok || rec.Offset >= r.End {
				b.reached[p.Topic] = append(b.reached[p.Topic], p.Partition)
				return
			}
			if rec.Offset >= r.Start && !rec.Attrs.IsControl() {
				out = append(out, fromKgo(rec))
			}
			if rec.Offset == r.End-1 {
				b.reached[p.Topic] = append(b.reached[p.Topic], p.Partition)
				return
			}
		}
	})
	return out
}

// EndBatch implements pipeline.Transactional. Once a transaction that reached a
// partition's end is committed, the partition is paused: nothing more of it is the job's.
// An aborted one rewinds, and its partitions are fetched again.
func (b *BoundedGroup) EndBatch(ctx context.Context) (bool, error) {
	committed, err := b.TransactSession.EndBatch(ctx)
	if committed && len(b.reached) > 0 {
		b.s.Client().PauseFetchPartitions(b.reached)
	}
	b.reached = nil
	return committed, err
}

// refresh reads the group's committed offsets, at most every Check, into the job's
// progress. A failure only delays it: the next Fetch tries again.
func (b *BoundedGroup) refresh(ctx context.Context) {
	if time.Since(b.checked) < b.Check {
		return
	}
	b.checked = time.Now()
	offs, err := b.adm.adm.FetchOffsetsForTopics(ctx, b.job.Group, b.job.Topics...)
	b.adm.refreshAfter(err)
	if err != nil {
		b.log.Warn("reading the job's committed offsets; will retry", zap.Error(err))
		return
	}
	done, complete := b.job.Progress(func(t string, p int32) (int64, bool) {
		o, ok := offs.Lookup(t, p)
		return o.At, ok && o.Err == nil && o.At >= 0
	})
	b.done.Store(done)
	b.complete.Store(complete)
}

// Done is the number of the job's offsets committed, by every process, when last read.
func (b *BoundedGroup) Done() int64 { return b.done.Load() }

// Job is the job this process works on.
func (b *BoundedGroup) Job() *BackfillJob { return b.job }

// Close leaves the group and closes the clients. Call it after the operator stopped.
func (b *BoundedGroup) Close() {
	b.TransactSession.Close()
	b.adm.Close()
}
