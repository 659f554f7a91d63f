package main

import (
	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/topics"
)

func newTailCmd(g *globalFlags) *cobra.Command {
	var fromStart bool
	var limit int
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print records of a topic (predictions, alerts, dead letters) as they arrive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			r, err := topics.NewReader(c.Kafka, fromStart, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			return audit.Tail(cmd.Context(), r, cmd.OutOrStdout(), limit)
		},
	}
	cmd.Flags().BoolVar(&fromStart, "from-beginning", false, "start at the earliest offset instead of the end")
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "stop after this many records (0: never)")
	return cmd
}
