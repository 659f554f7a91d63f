package main

import (
	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/drivers"
)

func newTailCmd(g *globalFlags) *cobra.Command {
	var o drivers.PrintTopicOptions
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print records of a topic (predictions, alerts, dead letters) as they arrive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			return drivers.PrintTopic(cmd.Context(), c, args[0], o, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&o.FromStart, "from-beginning", false, "start at the earliest offset instead of the end")
	cmd.Flags().IntVarP(&o.Limit, "limit", "n", 0, "stop after this many records (0: never)")
	return cmd
}
