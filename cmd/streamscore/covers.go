package main

import (
	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
)

func newModelCoversCmd(g *globalFlags) *cobra.Command {
	var from, out string
	cmd := &cobra.Command{
		Use:   "covers FILE.onnx --from TRAINING.csv|.parquet",
		Short: "Count a tree ensemble's node covers from its training rows (for reason codes)",
		Long: `covers counts, from a training export, how many rows reach each node of every tree of the model:
reason codes (TreeSHAP) need these covers and ONNX does not store them. See docs/reasons.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, _, err := g.prepare(config.NoModel)
			if err != nil {
				return err
			}
			return drivers.WriteCovers(cc, args[0], from, out, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "training export (CSV or Parquet) to count the covers from (required)")
	cmd.Flags().StringVar(&out, "out", "covers.json", "file to write")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}
