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
