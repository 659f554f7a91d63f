package topics

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedBroker is an in-process Kafka-protocol broker (franz-go's kfake) for the demo and
// fast unit tests. It speaks the real wire protocol, but it is not Apache Kafka: the
// integration tests run against a real broker (scripts/kafka.sh).
type EmbeddedBroker struct {
	c *kfake.Cluster
}

// NewEmbeddedBroker starts a one-broker cluster on a free loopback port with the given
// topics already created.
func NewEmbeddedBroker(partitions int32, topics ...string) (*EmbeddedBroker, error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(partitions, topics...),
		kfake.DefaultNumPartitions(int(partitions)),
	)
	if err != nil {
		return nil, fmt.Errorf("starting embedded broker: %w", err)
	}
	return &EmbeddedBroker{c: c}, nil
}

// Addrs are the host:port addresses to bootstrap from.
func (b *EmbeddedBroker) Addrs() []string { return b.c.ListenAddrs() }

// Close stops the broker.
func (b *EmbeddedBroker) Close() { b.c.Close() }
