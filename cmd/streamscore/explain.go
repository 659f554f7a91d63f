package main

import (
	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
)

func newExplainCmd(g *globalFlags) *cobra.Command {
	var o drivers.ExplainOptions
	cmd := &cobra.Command{
		Use:   "explain [--topic T --partition P --offset O]",
		Short: "Print a row's features, score and every feature's TreeSHAP contribution",
		Long: `explain prints a row's features, model.path's score and every feature's TreeSHAP contribution;
the row comes from stdin or --topic's record. See docs/reasons.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cc, _, err := g.prepare(config.NeedModel)
			if err != nil {
				return err
			}
			return drivers.Explain(cmd.Context(), cc, cmd.InOrStdin(), o, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.Topic, "topic", "", "read the row from this topic's record (default: stdin)")
	cmd.Flags().Int32Var(&o.Partition, "partition", 0, "the record's partition")
	cmd.Flags().Int64Var(&o.Offset, "offset", 0, "the record's offset")
	return cmd
}
