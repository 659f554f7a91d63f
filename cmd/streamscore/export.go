package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
)

func newExportCmd(g *globalFlags) *cobra.Command {
	var from string
	var jsonOut bool
	o := drivers.ExportOptions{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a training set: the input topics replayed through the operator, features and labels to a CSV or Parquet file",
		Long: `export is the backfill driver with a feature sink: one row per scorable event (id, event time,
key, partition, offset, every feature as live scoring computes it, its label when known) to a
.csv or .parquet file, for training. See docs/backfill-and-verify.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.From, err = parseFrom(from); err != nil {
				return err
			}
			cc, log, err := g.prepare(config.NoModel)
			if err != nil {
				return err
			}
			s, err := drivers.Export(cmd.Context(), cc, o, log, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d rows (%d labelled) of %d events to %s in %.1fs; %d dead-lettered, %d labels read\n",
				s.Rows, s.Labelled, s.Events, s.Out, s.Seconds, s.DeadLettered, s.Labels)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "earliest", "earliest, or the RFC 3339 time of the first record to export (window state is rebuilt from before it)")
	fl.StringVar(&o.Out, "out", "", "file:PATH.csv or file:PATH.parquet")
	fl.BoolVar(&jsonOut, "json", false, "print the summary as one JSON object")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
