package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/drivers"
)

func newVerifyCmd(g *globalFlags) *cobra.Command {
	var tolerance float64
	var show int
	cmd := &cobra.Command{
		Use:   "verify A B",
		Short: "Join two prediction streams (topic:NAME or file:PATH) and report gaps and score mismatches",
		Long: `verify joins two prediction streams on each event's topic, partition and offset; it exits
non-zero on any gap or score mismatch (bit-exact unless --tolerance); events scored by different
versions are compared per version pair instead. See docs/backfill-and-verify.md.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			decode, err := drivers.PredictionJSON(c) // predictions written with output.format avro
			if err != nil {
				return err
			}
			rep, err := audit.Verify(cmd.Context(), c.Kafka, args[0], args[1], audit.Options{Tolerance: tolerance, Show: show, Threshold: c.Threshold, Decode: decode})
			if err != nil {
				return err
			}
			audit.Print(cmd.OutOrStdout(), rep, tolerance)
			if !rep.OK() {
				return errors.New("the prediction streams differ")
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&tolerance, "tolerance", 0, "largest absolute score difference that counts as equal (0: bit-exact)")
	cmd.Flags().IntVar(&show, "show", 10, "how many mismatches and gaps to print")
	return cmd
}
