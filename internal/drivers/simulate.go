package drivers

import (
	"context"
	"io"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/topics"
)

// SimulateOptions say what SimulateAndExport simulates and where the export goes.
type SimulateOptions struct {
	Days int
	Seed uint64
	Out  string // as ExportOptions.Out
}

// SimulateAndExport produces o.Days of simulated events and their delayed labels into an
// embedded broker, then exports them. It points c at that broker.
func SimulateAndExport(ctx context.Context, c *config.Config, o SimulateOptions, log *zap.Logger, progress io.Writer) (*ExportSummary, error) {
	merchants, customers, _ := SimTableTopics(c) // a config without them simulates no tables
	broker, err := topics.NewEmbeddedBroker(3, nonEmpty(append(append([]string{}, c.Topics.Input...), c.Topics.Labels, merchants, customers))...)
	if err != nil {
		return nil, err
	}
	defer broker.Close()
	c.Kafka.Brokers = broker.Addrs()
	c.Kafka.TLS, c.Kafka.SASL = topics.TLSConfig{}, topics.SASLConfig{}
	cc, err := c.Validate(config.Needs{Kafka: true})
	if err != nil {
		return nil, err
	}
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		return nil, err
	}
	res, err := sim.Produce(ctx, p, sim.ProduceOptions{Days: o.Days, Seed: o.Seed, Topic: c.Topics.Input[0], Labels: c.Topics.Labels, Merchants: merchants, Customers: customers}, nil)
	p.Close()
	if err != nil {
		return nil, err
	}
	log.Info("simulated", zap.Int64("events", res.Events), zap.Int64("labels", res.Labels), zap.Duration("took", res.Elapsed))
	return Export(ctx, cc, ExportOptions{Out: o.Out}, log, progress)
}
