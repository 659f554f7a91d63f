package topics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrNoTopic is returned when a topic streamscore needs does not exist: waiting does not
// create it, so WithinFailover does not retry it.
var ErrNoTopic = errors.New("topic does not exist")

// GaveUpError is a step that still failed when kafka.failover_timeout ran out.
type GaveUpError struct {
	What  string        // what was being done, e.g. "feedback topic x: listing start offsets"
	After time.Duration // the failover timeout
	Err   error         // the last attempt's error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("%s: gave up after %v (kafka.failover_timeout): %v", e.What, e.After, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *GaveUpError) Unwrap() error { return e.Err }

// WithinFailover calls fn until it succeeds, backing off between attempts (100ms doubling
// to 2s), for at most cc's failover timeout: a step that needs a broker waits out a
// leader or coordinator move instead of failing on the first refused connection. It
// returns at once, with fn's error, when ctx ends or the error is permanent (a missing
// topic, an authorization or configuration error); after the timeout it returns a
// *GaveUpError naming what, the cause and the setting. fn's ctx ends with the timeout.
func WithinFailover(ctx context.Context, cc ClientConfig, what string, fn func(context.Context) error) error {
	budget := cc.Failover()
	bounded, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var last error
	for attempt := 1; ; attempt++ {
		err := fn(bounded)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || Permanent(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if last == nil || !errors.Is(err, context.DeadlineExceeded) {
			last = err // keep the cause rather than the timeout that ended the last try
		}
		t := time.NewTimer(retryBackoff(attempt))
		select {
		case <-t.C:
		case <-bounded.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if bounded.Err() != nil {
			return &GaveUpError{What: what, After: budget, Err: last}
		}
	}
}

// permanent marks an error of a step that waiting does not cure, such as a topic laid
// out in a way streamscore cannot use.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent reports whether err is one that waiting does not cure: a missing topic, a
// connection settings problem (ConnectError), or a Kafka error code that is not
// retriable (authorization, invalid configuration). Everything else that reaches a
// start-up step (refused connections, timeouts, leader and coordinator moves) is a fault
// the cluster recovers from.
func Permanent(err error) bool {
	var p permanent
	if errors.Is(err, ErrNoTopic) || errors.As(err, &p) {
		return true
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && ke == kerr.InvalidReplicationFactor {
		// "larger than available brokers" while one is down; a factor larger than the
		// cluster gives up after the timeout, with the broker's message
		return false
	}
	return errors.As(err, &ke) && !ke.Retriable
}

// Admin wraps the Kafka admin API calls streamscore needs.
type Admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// NewAdmin connects an admin client.
func NewAdmin(cc ClientConfig) (*Admin, error) {
	opts, err := cc.opts("admin")
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Admin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close releases the connection.
func (a *Admin) Close() { a.cl.Close() }

// refreshAfter asks for fresh metadata after a failed group request. franz-go caches a
// group's coordinator and, for the sharded admin requests (DescribeGroups, OffsetFetch),
// neither retries nor forgets it when dialing that broker fails: after the coordinator's
// broker dies, every request goes to the dead node until a metadata refresh drops it
// (every metadataMaxAge here; franz-go's default, 5 minutes, held the cluster tests'
// client on a dead coordinator for 4). Refreshing at once makes the next request look
// the coordinator up again (franz-go rate-limits the refresh).
func (a *Admin) refreshAfter(err error) {
	if err != nil {
		a.cl.ForceMetadataRefresh()
	}
}

// TopicSpec is a topic to create when missing.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Configs such as cleanup.policy or retention.ms; nil values mean the broker default.
	Configs map[string]*string
}

// EnsureTopics creates the topics that do not exist yet (existing ones are left alone) and
// returns once the metadata lists every one of them.
func (a *Admin) EnsureTopics(ctx context.Context, replication int16, specs ...TopicSpec) error {
	for _, s := range specs {
		if s.Name == "" {
			continue
		}
		p := s.Partitions
		if p <= 0 {
			p = -1 // broker default
		}
		resp, err := a.adm.CreateTopic(ctx, p, replication, s.Configs, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", s.Name, err)
		}
	}
	// Kafka acknowledges CreateTopics before every broker's metadata knows the topic, and
	// a topic the metadata does not know is ErrNoTopic, which fails at once: a caller that
	// uses a topic right after creating it (or after another process did) waits here.
	for _, s := range specs {
		if s.Name == "" {
			continue
		}
		if _, err := partitionsOnceVisible(ctx, a, s.Name); err != nil {
			return err
		}
	}
	return nil
}

// DeleteTopics deletes the named topics; a topic that does not exist is no error.
func (a *Admin) DeleteTopics(ctx context.Context, names ...string) error {
	resps, err := a.adm.DeleteTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("deleting topics: %w", err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("deleting topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// Partitions returns the partition count of each topic; a missing topic is an error.
func (a *Admin) Partitions(ctx context.Context, topics ...string) (map[string]int32, error) {
	md, err := a.adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}
	out := make(map[string]int32, len(topics))
	var missing []string
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, t)
			continue
		}
		if td.Err != nil {
			return out, fmt.Errorf("metadata of %s: %w", t, td.Err) // e.g. no leader yet: retriable
		}
		out[t] = int32(len(td.Partitions))
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("%w: %s", ErrNoTopic, strings.Join(missing, ", "))
	}
	return out, nil
}

// BrokerInfo reports the cluster as the broker describes itself.
type BrokerInfo struct {
	ClusterID string
	// KRaft is true when the cluster answers DescribeQuorum with a leader: only KRaft
	// controllers do (ZooKeeper clusters and the in-process fake do not).
	KRaft        bool
	QuorumLeader int32
	// Features are the cluster's finalized feature levels from ApiVersions, such as
	// metadata.version (which names the Kafka release the metadata format belongs to)
	// and kraft.version.
	Features map[string]int16
}

// Describe returns the cluster id, whether it runs KRaft, and its finalized features.
func (a *Admin) Describe(ctx context.Context) (BrokerInfo, error) {
	bi := BrokerInfo{Features: map[string]int16{}, QuorumLeader: -1}
	md, err := a.adm.BrokerMetadata(ctx)
	if err != nil {
		return bi, fmt.Errorf("reading metadata: %w", err)
	}
	bi.ClusterID = md.Cluster

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "streamscore", "1"
	avr, err := av.RequestWith(ctx, a.cl)
	if err != nil {
		return bi, fmt.Errorf("api versions: %w", err)
	}
	for _, f := range avr.FinalizedFeatures {
		bi.Features[f.Name] = f.MaxVersionLevel
	}

	dq := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	p.Partition = 0
	t.Partitions = append(t.Partitions, p)
	dq.Topics = append(dq.Topics, t)
	dqr, err := dq.RequestWith(ctx, a.cl)
	if err == nil && dqr.ErrorCode == 0 {
		for _, t := range dqr.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 && p.LeaderID >= 0 {
					bi.KRaft, bi.QuorumLeader = true, p.LeaderID
				}
			}
		}
	}
	return bi, nil
}

// Behind returns, summed over the partitions of topics, how far the group's committed
// offsets are behind the end offsets (0 when everything written is committed).
func (a *Admin) Behind(ctx context.Context, group string, topics ...string) (int64, error) {
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("listing end offsets: %w", err)
	}
	committed, err := a.adm.FetchOffsetsForTopics(ctx, group, topics...)
	a.refreshAfter(err)
	if err != nil {
		return 0, fmt.Errorf("fetching committed offsets of %s: %w", group, err)
	}
	var behind int64
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		at := int64(0)
		if ok && c.Err == nil && c.At >= 0 {
			at = c.At
		}
		if o.Offset > at {
			behind += o.Offset - at
		}
	})
	return behind, nil
}

// AssignedMembers counts the members of a consumer group that hold at least one partition.
func (a *Admin) AssignedMembers(ctx context.Context, group string) (int, error) {
	gs, err := a.adm.DescribeGroups(ctx, group)
	a.refreshAfter(err)
	if err != nil {
		return 0, err
	}
	g, ok := gs[group]
	if !ok {
		return 0, nil
	}
	if g.Err != nil {
		return 0, g.Err
	}
	if g.State != "Stable" {
		return 0, nil
	}
	n := 0
	for _, m := range g.Members {
		if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
			n++
		}
	}
	return n, nil
}

// Committed returns the group's committed offset for one partition (-1: none).
func (a *Admin) Committed(ctx context.Context, group, topic string, partition int32) (int64, error) {
	offs, err := a.adm.FetchOffsetsForTopics(ctx, group, topic)
	a.refreshAfter(err)
	if err != nil {
		return -1, err
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok || o.Err != nil {
		return -1, nil
	}
	return o.At, nil
}
