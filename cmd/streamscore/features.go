package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/topics"
)

func newFeaturesCmd(g *globalFlags) *cobra.Command {
	var days int
	var seed uint64
	var out string
	cmd := &cobra.Command{
		Use:   "features",
		Short: "Write a training CSV from simulated data: the simulator into an embedded broker, then export",
		Long: `features simulates --days days of card transactions (the Fraud Detection Handbook's
simulator) into an embedded in-process broker, with each label on the labels topic a week
after its transaction, and then runs 'export' on it: the CSV holds exactly the features
that live scoring computes (windows and the feedback join included) and the labels.
testdata/model/train.py trains the reference model on this file.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			log, err := c.Log.NewLogger()
			if err != nil {
				return err
			}
			s, err := simulateAndExport(cmd.Context(), c, days, seed, "file:"+out, log, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d rows (%d labelled) to %s in %.1fs\n", s.Rows, s.Labelled, out, s.Seconds)
			return nil
		},
	}
	cmd.Flags().IntVar(&days, "days", 136, "days of simulated transactions (136 covers the handbook's test week)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "simulator seed")
	cmd.Flags().StringVar(&out, "out", "features.csv", "output CSV")
	return cmd
}

// simulateAndExport produces days of simulated events and their delayed labels into an
// embedded broker, then exports them.
func simulateAndExport(ctx context.Context, c *config.Config, days int, seed uint64, out string, log *zap.Logger, progress io.Writer) (*exportSummary, error) {
	broker, err := topics.NewEmbeddedBroker(3, append(append([]string{}, c.Topics.Input...), c.Topics.Labels)...)
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
	res, err := sim.Produce(ctx, p, sim.ProduceOptions{Days: days, Seed: seed, Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
	p.Close()
	if err != nil {
		return nil, err
	}
	log.Info("simulated", zap.Int64("events", res.Events), zap.Int64("labels", res.Labels), zap.Duration("took", res.Elapsed))
	return runExport(ctx, cc, exportOptions{out: out}, log, progress)
}
