package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/drivers"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	o := drivers.DemoOptions{}
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Score simulated transactions end to end on an embedded Kafka broker",
		Long: `demo runs the live scoring job ('run') on an in-process Kafka-protocol broker while producing N
simulated transactions, then prints a summary: events, predictions, alerts, dead letters, latency.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if g.logLevel == "" {
				c.Log.Level = "warn"
			}
			c.Log.Format = "console"
			c.Metrics.Address = "" // no port to clash with
			s, err := drivers.Demo(cmd.Context(), c, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if jsonOut {
				err = printJSON(cmd.OutOrStdout(), s)
			} else {
				s.Print(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if s.Predictions+s.DeadLettered != s.Events {
				return fmt.Errorf("%d events but %d predictions + %d dead letters", s.Events, s.Predictions, s.DeadLettered)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Events, "events", 20000, "events to produce")
	fl.Float64Var(&o.BadFraction, "bad-fraction", 0.01, "fraction of malformed events")
	fl.Float64Var(&o.Rate, "rate", 0, "events per second (0: as fast as possible)")
	fl.Uint64Var(&o.Seed, "seed", 1, "simulator seed")
	fl.BoolVar(&jsonOut, "json", false, "print the summary as one JSON object (the last line)")
	fl.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up when outputs stop arriving for this long")
	return cmd
}
