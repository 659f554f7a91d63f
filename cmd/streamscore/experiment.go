package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/drivers"
	"github.com/streamscore/streamscore/internal/lifecycle"
)

func newExperimentCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experiment",
		Short: "Sticky experiments: a share of the keys scored by a treatment version",
		Long: `experiment splits a model's keys between the version serving them now (control) and a
treatment version by a pure function of name, salt and key. See docs/model-lifecycle.md.`,
	}
	cmd.AddCommand(newExperimentStartCmd(g), newExperimentStopCmd(g), newExperimentListCmd(g), newExperimentReportCmd(g))
	return cmd
}

func newExperimentStartCmd(g *globalFlags) *cobra.Command {
	var spec lifecycle.ExperimentSpec
	var segment string
	cmd := &cobra.Command{
		Use:   "start NAME --treatment MODEL@VERSION --share PERCENT",
		Short: "Start an experiment on every instance",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error { // before the registry opens
			spec.Name = args[0]
			return lifecycle.ParseExperimentFlags(&spec, segment)
		},
		RunE: withRegistry(g, func(cmd *cobra.Command, _ []string, r *drivers.ModelRegistry) error {
			a, err := r.StartExperiment(cmd.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "experiment %s started on %s: %g%% of keys scored by %s (activation %d)\n",
				a.Experiment.Name, a.Name, a.Experiment.Share, a.Experiment.Treatment, a.Offset)
			return nil
		}),
	}
	cmd.Flags().StringVar(&spec.Model, "model", "", "the model name (default: model.name of the config)")
	cmd.Flags().StringVar(&spec.Treatment, "treatment", "", "the treatment, MODEL@VERSION or VERSION (a unique prefix will do)")
	cmd.Flags().Float64Var(&spec.Share, "share", 0, "percent of keys in the treatment arm, 0 < share < 100")
	cmd.Flags().StringVar(&spec.Salt, "salt", "", "salt of the key hash: another salt draws other keys")
	cmd.Flags().StringVar(&segment, "segment", "", `run only on the events "FIELD OP VALUE" holds for, e.g. "tx_amount >= 1000" (others are served as without it)`)
	cmd.Flags().BoolVar(&spec.Mirror, "mirror", false, "also score every event with the other arm into topics.shadow, for paired comparisons")
	return cmd
}

func newExperimentStopCmd(g *globalFlags) *cobra.Command {
	var promote bool
	cmd := &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop an experiment (--promote: make its treatment the live version)",
		Args:  cobra.ExactArgs(1),
		RunE: withRegistry(g, func(cmd *cobra.Command, args []string, r *drivers.ModelRegistry) error {
			a, err := r.StopExperiment(cmd.Context(), args[0], promote)
			if err != nil {
				return err
			}
			what := "the control serves every key again"
			if promote {
				what = a.Experiment.Treatment + " is now live"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "experiment %s on %s stopped: %s\n", args[0], a.Name, what)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&promote, "promote", false, "make the treatment the live version")
	return cmd
}

func newExperimentListCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the experiments, running and stopped",
		Args:  cobra.NoArgs,
		RunE: withRegistry(g, func(cmd *cobra.Command, _ []string, r *drivers.ModelRegistry) error {
			return r.PrintExperiments(cmd.Context(), cmd.OutOrStdout())
		}),
	}
}

func newModelServeCmd(g *globalFlags) *cobra.Command {
	var rules []string
	var off bool
	cmd := &cobra.Command{
		Use:   "serve NAME --rule [FIELD OP VALUE =>] PLAN ...",
		Short: "Serve a model by ensembles, cascades and segment rules",
		Long: `serve replaces what scores NAME's events on every instance, at a batch boundary. Each --rule is
"FIELD OP VALUE => PLAN" (OP: >=, >, <=, <, ==, !=); the first that holds picks the plan, the
last, a PLAN alone, is the default. A PLAN is a version, mean(V1,V2,...), max(V1,V2,...),
weighted(V1:W1,V2:W2,...) or cascade(FIRST>=GATE:SECOND). See docs/model-lifecycle.md.
Example: serve fraud --rule 'tx_amount >= 1000 => mean(3f2a,77aa)' --rule 'cascade(77aa>=0.3:3f2a)'`,
		Args:    cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error { return lifecycle.CheckServeFlags(rules, off) },
		RunE: withRegistry(g, func(cmd *cobra.Command, args []string, r *drivers.ModelRegistry) error {
			a, err := r.Serve(cmd.Context(), args[0], rules)
			if err != nil {
				return err
			}
			by := "its live version alone"
			if len(a.Rules) > 0 {
				by = fmt.Sprintf("%d rule(s)", len(a.Rules))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is served by %s (activation %d)\n", a.Name, by, a.Offset)
			return nil
		}),
	}
	cmd.Flags().StringArrayVar(&rules, "rule", nil, "a segment rule; repeat, the last is the default")
	cmd.Flags().BoolVar(&off, "off", false, "serve with the live version alone again")
	return cmd
}
