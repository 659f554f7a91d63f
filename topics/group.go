package topics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/record"
)

// GroupOptions configure a consumer-group source.
type GroupOptions struct {
	Group  string
	Topics []string
	// StartAt is where a group with no committed offset begins: "earliest" (default) or
	// "latest".
	StartAt string
	// MaxPollRecords bounds one Fetch (default 10000).
	MaxPollRecords int
	// FetchMaxBytes bounds one fetch response, and so the memory a fetch may buffer
	// (default 16 MiB).
	FetchMaxBytes int32
	// Registry, when set, gets the streamscore_consumer_lag gauge.
	Registry prometheus.Registerer
	// SessionTimeout is how long the group waits for a silent member before moving its
	// partitions (default: franz-go's 45s).
	SessionTimeout time.Duration
	// InstanceID enables static membership: a restarted instance with the same id takes its
	// partitions back without a rebalance (KIP-345).
	InstanceID string
	// extra are options of a bounded group job (boundedgroup.go), after the shared ones.
	extra []kgo.Opt
}

// GroupSource consumes the input topics in a consumer group with cooperative-sticky
// balancing, auto-commit off: the operator commits what it has finished through Commit.
// It implements pipeline.GroupSource. Fetch and AllowRebalance are called from the
// operator's fetch goroutine; Commit from any goroutine.
type GroupSource struct {
	cl   *kgo.Client
	log  *zap.Logger
	max  int
	lag  *prometheus.GaugeVec
	mu   sync.Mutex
	rev  func(context.Context, []record.TopicPartition)
	lost func([]record.TopicPartition)
}

// NewGroupSource joins the group lazily, on the first Fetch.
func NewGroupSource(cc ClientConfig, o GroupOptions) (*GroupSource, error) {
	opts, err := cc.opts("consumer")
	if err != nil {
		return nil, err
	}
	gopts, err := o.groupOpts(&cc)
	if err != nil {
		return nil, err
	}
	opts = append(opts, gopts...)
	s := &GroupSource{log: zap.NewNop(), max: o.MaxPollRecords}
	if cc.Logger != nil {
		s.log = cc.Logger
	}
	if o.Registry != nil {
		s.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamscore_consumer_lag",
			Help: "Records between the last fetched offset and the partition's high watermark.",
		}, []string{"topic", "partition"})
		if err := o.Registry.Register(s.lag); err != nil {
			// a live job reopens its source after a failure: the gauge of the source
			// before is the one to keep setting
			var are prometheus.AlreadyRegisteredError
			prev, ok := s.lag, false
			if errors.As(err, &are) {
				prev, ok = are.ExistingCollector.(*prometheus.GaugeVec)
			}
			if !ok {
				return nil, fmt.Errorf("registering lag metric: %w", err)
			}
			s.lag = prev
		}
	}
	opts = append(opts,
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) { s.onRevoked(ctx, m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.onLost(m) }),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating consumer: %w", err)
	}
	s.cl = cl
	return s, nil
}

// groupOpts fills in defaults and returns the options every group consumer of streamscore
// shares (at-least-once and exactly-once alike): group and topics, cooperative-sticky
// balancing, read_committed, the start of a new group, fetch sizes and membership, and
// cc's request retries with the group's session timeout.
func (o *GroupOptions) groupOpts(cc *ClientConfig) ([]kgo.Opt, error) {
	if o.Group == "" {
		return nil, errors.New("consumer group: no group id")
	}
	if len(o.Topics) == 0 {
		return nil, errors.New("consumer group: no input topics")
	}
	if o.MaxPollRecords <= 0 {
		o.MaxPollRecords = 10_000
	}
	if o.FetchMaxBytes <= 0 {
		o.FetchMaxBytes = 16 << 20
	}
	start := kgo.NewOffset().AtStart()
	switch o.StartAt {
	case "", "earliest":
	case "latest":
		start = kgo.NewOffset().AtEnd()
	default:
		return nil, fmt.Errorf("consumer group: start_at %q: want earliest or latest", o.StartAt)
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(o.FetchMaxBytes),
		// franz-go keeps one decompressed fetch buffered per broker: 256 KiB per partition
		// rather than its 1 MiB default keeps that buffer to tens of thousands of records,
		// and peak RSS in a catch-up about 30 MiB lower, at the same rate (docs/performance.md,
		// "Memory").
		kgo.FetchMaxPartitionBytes(256 << 10),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
	if o.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(o.SessionTimeout))
	}
	if o.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(o.InstanceID))
	}
	opts = append(opts, cc.retryOpts(o.SessionTimeout)...)
	return append(opts, o.extra...), nil
}

// SetRebalanceHandlers implements pipeline.GroupSource.
func (s *GroupSource) SetRebalanceHandlers(revoked func(context.Context, []record.TopicPartition), lost func([]record.TopicPartition)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev, s.lost = revoked, lost
}

func toTPs(m map[string][]int32) []record.TopicPartition {
	var tps []record.TopicPartition
	for t, ps := range m {
		for _, p := range ps {
			tps = append(tps, record.TopicPartition{Topic: t, Partition: p})
		}
	}
	return tps
}

func (s *GroupSource) onRevoked(ctx context.Context, m map[string][]int32) {
	s.mu.Lock()
	h := s.rev
	s.mu.Unlock()
	tps := toTPs(m)
	if len(tps) > 0 {
		s.log.Info("partitions revoked", zap.Int("partitions", len(tps)))
	}
	if h != nil {
		h(ctx, tps)
	}
	s.dropLag(tps)
}

func (s *GroupSource) onLost(m map[string][]int32) {
	s.mu.Lock()
	h := s.lost
	s.mu.Unlock()
	tps := toTPs(m)
	if len(tps) > 0 {
		s.log.Warn("partitions lost", zap.Int("partitions", len(tps)))
	}
	if h != nil {
		h(tps)
	}
	s.dropLag(tps)
}

func (s *GroupSource) dropLag(tps []record.TopicPartition) {
	if s.lag == nil {
		return
	}
	for _, tp := range tps {
		s.lag.DeleteLabelValues(tp.Topic, fmt.Sprint(tp.Partition))
	}
}

// Fetch implements pipeline.Source. It returns io.EOF once the client is closed.
func (s *GroupSource) Fetch(ctx context.Context) ([]record.Record, error) {
	for {
		fs := s.cl.PollRecords(ctx, s.max)
		if fs.IsClientClosed() {
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return convert(fs), err
		}
		fs.EachError(func(t string, p int32, err error) {
			s.log.Warn("fetch error; franz-go retries", zap.String("topic", t), zap.Int32("partition", p), zap.Error(err))
		})
		if s.lag != nil {
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				if n := len(p.Records); n > 0 {
					lag := p.HighWatermark - p.Records[n-1].Offset - 1
					s.lag.WithLabelValues(p.Topic, fmt.Sprint(p.Partition)).Set(float64(lag))
				}
			})
		}
		if recs := convert(fs); len(recs) > 0 {
			return recs, nil
		}
		// Only errors, or nothing: let a pending rebalance in before polling again.
		s.cl.AllowRebalance()
	}
}

func convert(fs kgo.Fetches) []record.Record {
	n := fs.NumRecords()
	if n == 0 {
		return nil
	}
	out := make([]record.Record, 0, n)
	fs.EachRecord(func(r *kgo.Record) { out = append(out, fromKgo(r)) })
	return out
}

func fromKgo(r *kgo.Record) record.Record {
	pr := record.Record{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, LeaderEpoch: r.LeaderEpoch,
		Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
	}
	if len(r.Headers) > 0 {
		pr.Headers = make([]record.Header, len(r.Headers))
		for i, h := range r.Headers {
			pr.Headers[i] = record.Header{Key: h.Key, Value: h.Value}
		}
	}
	return pr
}

// AllowRebalance implements pipeline.GroupSource.
func (s *GroupSource) AllowRebalance() { s.cl.AllowRebalance() }

// Commit implements pipeline.Committer with a synchronous commit that a rebalance cannot
// cancel.
func (s *GroupSource) Commit(ctx context.Context, offs []record.Offset) error {
	m := make(map[string]map[int32]kgo.EpochOffset)
	for _, o := range offs {
		if m[o.Topic] == nil {
			m[o.Topic] = make(map[int32]kgo.EpochOffset)
		}
		m[o.Topic][o.Partition] = kgo.EpochOffset{Epoch: o.LeaderEpoch, Offset: o.Offset}
	}
	var rerr error
	s.cl.CommitOffsetsSync(ctx, m, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && rerr == nil {
					rerr = fmt.Errorf("committing %s/%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	return rerr
}

// Close leaves the group (running the revoke handler, which commits) and closes the client.
func (s *GroupSource) Close() { s.cl.Close() }
