package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/drivers"
)

func newFeaturesCmd(g *globalFlags) *cobra.Command {
	var days int
	var seed uint64
	var out string
	cmd := &cobra.Command{
		Use:   "features",
		Short: "Write a training CSV from simulated data: the simulator into an embedded broker, then export",
		Long: `features simulates --days days of card transactions into an embedded broker and runs 'export'
on them: the file train.py trains the reference model on. See docs/features.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			log, err := c.Log.NewLogger()
			if err != nil {
				return err
			}
			s, err := drivers.SimulateAndExport(cmd.Context(), c, drivers.SimulateOptions{Days: days, Seed: seed, Out: "file:" + out}, log, cmd.ErrOrStderr())
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
