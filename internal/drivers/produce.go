package drivers

import (
	"context"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/topics"
)

// ProduceSimulated creates o.Topic and o.Labels when missing (3 partitions each, with
// topics.replication_factor) and writes the simulator's transactions and labels to them,
// as `streamscore produce` does.
func ProduceSimulated(ctx context.Context, c *config.Config, o sim.ProduceOptions) (sim.ProduceResult, error) {
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		return sim.ProduceResult{}, err
	}
	specs := []topics.TopicSpec{{Name: o.Topic, Partitions: 3}, {Name: o.Labels, Partitions: 3}}
	for _, t := range []string{o.Merchants, o.Customers} {
		if t != "" {
			specs = append(specs, topics.TopicSpec{Name: t, Partitions: 3})
		}
	}
	err = adm.EnsureTopics(ctx, c.Topics.ReplicationFactor, specs...)
	adm.Close()
	if err != nil {
		return sim.ProduceResult{}, err
	}
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		return sim.ProduceResult{}, err
	}
	defer p.Close()
	return sim.Produce(ctx, p, o, nil)
}
