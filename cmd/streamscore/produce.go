package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/drivers"
	"github.com/streamscore/streamscore/internal/sim"
)

func newProduceCmd(g *globalFlags) *cobra.Command {
	o := sim.ProduceOptions{}
	var withTables bool
	var format string
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Generate card transactions (the Fraud Detection Handbook simulator) into Kafka",
		Long: `produce writes N simulated transactions (deterministic for a seed) to the input topic, keyed by
customer id, and their fraud labels to the labels topic --label-delay later in simulated time;
--bad-fraction replaces that fraction with malformed events, which streamscore must dead-letter.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if o.Topic == "" {
				o.Topic = c.Topics.Input[0]
			}
			o.Labels = c.Topics.Labels
			if withTables {
				if o.Merchants, o.Customers, err = drivers.SimTableTopics(c); err != nil {
					return err
				}
			}
			if o.BadFraction < 0 || o.BadFraction > 1 {
				return fmt.Errorf("--bad-fraction %v: want 0 to 1", o.BadFraction)
			}
			if format != "json" {
				if o.Encode, err = drivers.SimulatedEncoder(cmd.Context(), c.SchemaRegistry, o.Topic, format); err != nil {
					return err
				}
			}
			res, err := drivers.ProduceSimulated(cmd.Context(), c, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "produced %d events (%d malformed) to %s and %d labels to %s in %v (%.0f events/s)\n",
				res.Events, res.Bad, o.Topic, res.Labels, o.Labels, res.Elapsed.Round(time.Millisecond), float64(res.Events)/res.Elapsed.Seconds())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Events, "events", 10000, "number of events")
	fl.Float64Var(&o.Rate, "rate", 0, "events per second (0: as fast as possible)")
	fl.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fl.Float64Var(&o.BadFraction, "bad-fraction", 0, "fraction of malformed events, 0 to 1")
	fl.StringVar(&o.Topic, "topic", "", "input topic (default: the first of topics.input)")
	fl.BoolVar(&withTables, "tables", false, "also write the simulator's reference tables to the topics of the config's tables named merchants and customers")
	fl.DurationVar(&o.LabelDelay, "label-delay", 7*24*time.Hour, "simulated time after a transaction at which its label is written")
	fl.StringVar(&format, "format", "json", "event encoding: json, or avro, protobuf or json-schema (registers the simulator's schema under <topic>-value in schema_registry and writes the wire format)")
	return cmd
}
