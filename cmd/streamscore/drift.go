package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
	"github.com/streamscore/streamscore/internal/monitor"
)

func newDriftCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Drift against the training data: build a model's reference, report a stretch of the log",
	}
	cmd.AddCommand(newDriftReferenceCmd(g), newDriftReportCmd(g))
	return cmd
}

func newDriftReferenceCmd(g *globalFlags) *cobra.Command {
	var o drivers.DriftReferenceOptions
	cmd := &cobra.Command{
		Use:   "reference",
		Short: "Build model.path's training reference (quantile bins of every feature and of the score) from a features CSV",
		Long: `reference scores the training rows (labelled, tx_datetime in [--train-start, +--train-days)) of
the features CSV that testdata/model/train.py trained on with model.path and writes the decile
bins of every feature and of the score as JSON (drift.reference). See docs/monitoring.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			o.Source = "streamscore drift reference " + strings.Join(os.Args[3:], " ")
			ref, err := drivers.WriteDriftReference(c, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote the reference of %s %s (%d training rows, %d features) to %s\n",
				ref.Model, ref.ModelVersion, ref.Rows, len(ref.Features), o.Out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Features, "features", "features.csv", "the training CSV ('streamscore features --days 136')")
	fl.StringVar(&o.Out, "out", "reference.json", "where to write the reference")
	fl.StringVar(&o.TrainStart, "train-start", "2018-07-25", "first training day, as train.py's --train-start")
	fl.IntVar(&o.TrainDays, "train-days", 7, "training days, as train.py's --train-days")
	fl.IntVar(&o.Bins, "bins", 10, "quantile bins per feature")
	return cmd
}

func newDriftReportCmd(g *globalFlags) *cobra.Command {
	var topic string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Print the drift of every event-time window of a drift topic, partitions merged, against drift.reference",
		Long: `report reads a drift topic to its end (topics.drift, or NAME.drift of 'backfill --out
topic:NAME') and prints, per model version and window, the PSI of the score and of every
feature against the training reference. See docs/monitoring.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cc, _, err := g.prepare(config.NeedModel)
			if err != nil {
				return err
			}
			if cc.DriftReference == nil {
				return fmt.Errorf("drift.reference is not set: point it at the model's reference.json")
			}
			if topic == "" {
				topic = cc.Topics.Drift
			}
			windows, err := monitor.ReadTopic(cmd.Context(), cc.Kafka, topic, cc.DriftReference)
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), windows)
			}
			return monitor.Print(cmd.OutOrStdout(), windows, cc.Drift.MinCount)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&topic, "topic", "", "the drift topic to read (default topics.drift)")
	fl.BoolVar(&jsonOut, "json", false, "print the windows as one JSON array")
	return cmd
}
