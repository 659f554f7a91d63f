package main

import (
	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
	"github.com/streamscore/streamscore/internal/evaluate"
)

func newExperimentReportCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report NAME",
		Short: "Judge an experiment against the labels: per-arm confusion counts, precision, recall, AUC, AP, card precision@100",
		Long: `report joins the experiment's predictions with the labels (both topics read to their end
offsets) and prints per arm, treatment − control and a verdict. See docs/experiments.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, log, err := g.prepare(config.NoModel)
			if err != nil {
				return err
			}
			rep, err := drivers.ExperimentReport(cmd.Context(), cc, args[0], log)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return evaluate.Print(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print one JSON object: {"experiment":…,"arms":[{"arm","version","events","labelled","alerts","tp","fp","fn","tn","precision","recall","auc",…}],…}`)
	return cmd
}
