package topics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamscore/streamscore/pipeline/record"
)

// History reads an input partition's past so that the operator can rebuild its window
// state: from the start of the log up to an offset, read_committed, outside any group.
// It implements pipeline.History; Replay may be called from one goroutine at a time.
type History struct {
	cc ClientConfig
}

// NewHistory returns a History on the cluster of cc.
func NewHistory(cc ClientConfig) *History { return &History{cc: cc} }

// Replay implements pipeline.History.
func (h *History) Replay(ctx context.Context, tp record.TopicPartition, end int64, fn func(*record.Record) error) error {
	adm, err := NewAdmin(h.cc)
	if err != nil {
		return err
	}
	starts, err := adm.adm.ListStartOffsets(ctx, tp.Topic)
	adm.Close()
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("listing start offsets of %s: %w", tp.Topic, err)
	}
	s, ok := starts.Lookup(tp.Topic, tp.Partition)
	if !ok || s.Offset >= end {
		return nil // nothing before end
	}
	opts, err := h.cc.opts("history")
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tp.Topic: {tp.Partition: kgo.NewOffset().At(s.Offset)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(32<<20),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, 20_000)
		if err := ctx.Err(); err != nil {
			return err
		}
		if fs.IsClientClosed() {
			return io.ErrUnexpectedEOF
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("reading %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		done := false
		var cbErr error
		fs.EachRecord(func(r *kgo.Record) {
			if done || cbErr != nil {
				return
			}
			if r.Offset >= end {
				done = true
				return
			}
			if !r.Attrs.IsControl() {
				pr := fromKgo(r)
				cbErr = fn(&pr)
			}
			if r.Offset == end-1 {
				done = true
			}
		})
		if cbErr != nil {
			return cbErr
		}
		if done {
			return nil
		}
	}
}

// FeedbackOptions say what a Feedback reads.
type FeedbackOptions struct {
	Topic string
	// Bounded stops each partition at the end offset captured when the Feedback was
	// created (backfill, export); otherwise it follows the topic live.
	Bounded bool
	// MaxPollRecords bounds one Poll (default 10000).
	MaxPollRecords int
}

// Feedback reads every partition of the feedback (labels) topic from the start of its
// log, read_committed, outside any group: each instance holds the whole topic as a table.
// It implements pipeline.FeedbackSource and is not safe for concurrent use.
type Feedback struct {
	cc      ClientConfig
	o       FeedbackOptions
	parts   []int32
	endAll  map[int32]int64 // bounded: exclusive end of each partition, captured at creation
	end     map[int32]int64 // bounded: the partitions still open
	cl      *kgo.Client
	adm     *Admin
	pending []record.FeedbackProgress
	next    map[int32]int64 // offset after the last record Poll returned (control records included)
}

// NewFeedback lists the topic's partitions (and, bounded, its end offsets) and starts
// reading from the start of the log.
func NewFeedback(ctx context.Context, cc ClientConfig, o FeedbackOptions) (*Feedback, error) {
	if o.Topic == "" {
		return nil, fmt.Errorf("feedback: no topic named (topics.labels)")
	}
	if o.MaxPollRecords <= 0 {
		o.MaxPollRecords = 10_000
	}
	f := &Feedback{cc: cc, o: o}
	var err error
	if f.adm, err = NewAdmin(cc); err != nil {
		return nil, err
	}
	if err := f.start(ctx, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// start (re)creates the consumer at the start of every partition. first captures the
// bounded end offsets.
func (f *Feedback) start(ctx context.Context, first bool) error {
	var starts, ends kadm.ListedOffsets
	err := WithinFailover(ctx, f.cc, fmt.Sprintf("feedback topic %s: listing start offsets", f.o.Topic), func(ctx context.Context) (err error) {
		starts, err = listed(f.adm.adm.ListStartOffsets(ctx, f.o.Topic))
		return err
	})
	if err != nil {
		return err
	}
	err = WithinFailover(ctx, f.cc, fmt.Sprintf("feedback topic %s: listing end offsets", f.o.Topic), func(ctx context.Context) (err error) {
		ends, err = listed(f.adm.adm.ListCommittedOffsets(ctx, f.o.Topic))
		return err
	})
	if err != nil {
		return err
	}
	if _, ok := ends[f.o.Topic]; !ok {
		return fmt.Errorf("feedback topic %s: %w", f.o.Topic, ErrNoTopic)
	}
	if first {
		f.parts = nil
		f.endAll = map[int32]int64{}
		ends.Each(func(e kadm.ListedOffset) {
			f.parts = append(f.parts, e.Partition)
			f.endAll[e.Partition] = e.Offset
		})
		sort.Slice(f.parts, func(i, j int) bool { return f.parts[i] < f.parts[j] })
	}
	consume := map[int32]kgo.Offset{}
	f.pending = f.pending[:0]
	f.next = map[int32]int64{}
	open := map[int32]int64{}
	for _, p := range f.parts {
		s, _ := starts.Lookup(f.o.Topic, p)
		e, _ := ends.Lookup(f.o.Topic, p)
		f.next[p] = s.Offset
		end := e.Offset
		if f.o.Bounded {
			end = f.endAll[p]
		}
		if s.Offset >= end && f.o.Bounded {
			f.pending = append(f.pending, record.FeedbackProgress{Partition: p, Ended: true})
			continue
		}
		if f.o.Bounded {
			open[p] = end
		}
		consume[p] = kgo.NewOffset().At(s.Offset)
	}
	f.end = open
	if f.cl != nil {
		f.cl.Close()
		f.cl = nil
	}
	if len(consume) == 0 {
		return nil
	}
	opts, err := f.cc.opts("feedback")
	if err != nil {
		return err
	}
	f.cl, err = kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.o.Topic: consume}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxPartitionBytes(256<<10), // as the input's (GroupOptions): a smaller buffered fetch
	)...)
	return err
}

// listed folds the partitions' errors of a listing into its error: a partition whose
// leader is moving answers with a retriable one, which WithinFailover retries; a topic
// the metadata does not know is ErrNoTopic, which it does not.
func listed(l kadm.ListedOffsets, err error) (kadm.ListedOffsets, error) {
	if err != nil {
		return l, err
	}
	for t, ps := range l {
		if o, ok := ps[-1]; ok && errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return l, fmt.Errorf("%s: %w", t, ErrNoTopic)
		}
	}
	return l, l.Error()
}

// Partitions implements pipeline.FeedbackSource.
func (f *Feedback) Partitions() []int32 { return f.parts }

// Rewind implements pipeline.FeedbackSource. A bounded read starts over towards the same
// end offsets as before.
func (f *Feedback) Rewind(ctx context.Context) error { return f.start(ctx, false) }

// CaughtUp implements pipeline.FeedbackSource: a partition is caught up when the broker's
// last stable offset is not beyond the records Poll has returned. It is one ListOffsets
// request per partition leader, on the client's cached metadata (the live pipeline asks
// once per input fetch while a labels partition is idle; kadm would add a Metadata round
// trip to each).
func (f *Feedback) CaughtUp(ctx context.Context) (map[int32]bool, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 1 // read committed: the last stable offset
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = f.o.Topic
	for _, p := range f.parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // the end
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, f.adm.cl)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]bool, len(f.parts))
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("end offset of %s/%d: %w", t.Topic, p.Partition, err)
			}
			out[p.Partition] = f.next[p.Partition] >= p.Offset
		}
	}
	if len(out) != len(f.parts) {
		return nil, fmt.Errorf("end offsets of %s: %d of %d partitions answered", f.o.Topic, len(out), len(f.parts))
	}
	return out, nil
}

// Poll implements pipeline.FeedbackSource.
func (f *Feedback) Poll(ctx context.Context) (record.FeedbackPoll, error) {
	var out record.FeedbackPoll
	if len(f.pending) > 0 {
		out.Progress = append(out.Progress, f.pending...)
		f.pending = f.pending[:0]
		return out, nil
	}
	if f.cl == nil || (f.o.Bounded && len(f.end) == 0) {
		if f.o.Bounded {
			return out, io.EOF
		}
		<-ctx.Done() // a live topic with no partitions to read
		return out, ctx.Err()
	}
	fs := f.cl.PollRecords(ctx, f.o.MaxPollRecords)
	out.Records = make([]record.Record, 0, fs.NumRecords()) // take appends: no growing by copies
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		if ferr == nil {
			ferr = err
		}
	})
	var done []int32
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		var ended bool
		out.Records, ended = f.take(out.Records, p)
		if ended {
			out.Progress = append(out.Progress, record.FeedbackProgress{Partition: p.Partition, Ended: true})
			delete(f.end, p.Partition)
			done = append(done, p.Partition)
		}
	})
	if len(done) > 0 {
		f.cl.PauseFetchPartitions(map[string][]int32{f.o.Topic: done})
	}
	if ferr != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, fmt.Errorf("feedback topic %s: %w", f.o.Topic, ferr)
	}
	if f.o.Bounded && len(f.end) == 0 {
		return out, io.EOF
	}
	return out, nil
}

// take appends the data records of one fetched partition to recs, up to the partition's end
// when bounded, and says whether that end was reached.
func (f *Feedback) take(recs []record.Record, p kgo.FetchTopicPartition) ([]record.Record, bool) {
	if len(p.Records) == 0 {
		return recs, false
	}
	end, open := f.end[p.Partition]
	if f.o.Bounded && !open {
		return recs, false
	}
	last := int64(-1)
	for _, r := range p.Records {
		if f.o.Bounded && r.Offset >= end {
			break
		}
		last = r.Offset
		f.next[p.Partition] = r.Offset + 1
		if !r.Attrs.IsControl() {
			recs = append(recs, fromKgo(r))
		}
	}
	return recs, f.o.Bounded && last >= end-1
}

// Close stops the consumer.
func (f *Feedback) Close() {
	if f.cl != nil {
		f.cl.Close()
	}
	if f.adm != nil {
		f.adm.Close()
	}
}
