package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/drivers"
)

func newModelCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "The model registry on Kafka: push, activate, roll back and list versions",
		Long: `model manages the versions that running instances score with, in the registry topic: push,
activate (live or shadow), rollback and list. See docs/model-lifecycle.md.`,
	}
	cmd.AddCommand(newModelPushCmd(g), newModelActivateCmd(g), newModelRollbackCmd(g), newModelListCmd(g), newModelServeCmd(g), newModelCoversCmd(g))
	return cmd
}

// withRegistry is the RunE of a registry command: it validates the config for the
// registry, opens it, calls f and closes it.
func withRegistry(g *globalFlags, f func(cmd *cobra.Command, args []string, r *drivers.ModelRegistry) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := g.load()
		if err != nil {
			return err
		}
		r, err := drivers.OpenModelRegistry(cmd.Context(), c)
		if err != nil {
			return err
		}
		defer r.Close()
		return f(cmd, args, r)
	}
}

func newModelPushCmd(g *globalFlags) *cobra.Command {
	var name, golden, reference, covers string
	cmd := &cobra.Command{
		Use:   "push FILE",
		Short: "Validate a model file and store it in the registry",
		Args:  cobra.ExactArgs(1),
		RunE: withRegistry(g, func(cmd *cobra.Command, args []string, r *drivers.ModelRegistry) error {
			meta, err := r.Push(cmd.Context(), args[0], drivers.PushModelOptions{Name: name, Golden: golden, Reference: reference, Covers: covers})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s@%s (%d bytes, %d records) to %s; activate it with: streamscore model activate %s@%s\n",
				meta.Name, meta.Version, meta.Bytes, meta.Chunks+1, r.Topic(), meta.Name, meta.Version)
			return nil
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "model name (default: model.name of the config)")
	cmd.Flags().StringVar(&golden, "golden", "", "golden rows to validate on (default: golden.jsonl beside FILE when present); a missing or malformed file refuses the push")
	cmd.Flags().StringVar(&covers, "covers-from", "", "tree ensembles: node covers for reason codes, counted from a training export (.csv/.parquet) or read from a covers file (.json) (default: the model's metadata, else covers.json beside FILE for its version; none: no reasons)")
	cmd.Flags().StringVar(&reference, "reference", "", "drift reference to ship with the version (default: reference.json beside FILE when present; none: no reference)")
	return cmd
}

func newModelActivateCmd(g *globalFlags) *cobra.Command {
	var shadow, off bool
	var name, version string
	cmd := &cobra.Command{
		Use:   "activate NAME@VERSION",
		Short: "Make a stored version live (or the shadow) on every instance",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error { // before the registry opens
			var ok bool
			if name, version, ok = strings.Cut(args[0], "@"); !ok || name == "" || (version == "" && !off) {
				return fmt.Errorf("%q: want NAME@VERSION (a unique prefix of the version will do)", args[0])
			}
			return nil
		},
		RunE: withRegistry(g, func(cmd *cobra.Command, _ []string, r *drivers.ModelRegistry) error {
			as := drivers.AsLive
			switch {
			case off:
				as = drivers.ShadowOff
			case shadow:
				as = drivers.AsShadow
			}
			a, err := r.Activate(cmd.Context(), name, version, as)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s is now %s (activation %d at %s)\n", a.Name, a.Version, a.Role, a.Offset, a.At.Format(time.RFC3339))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&shadow, "shadow", false, "make it the shadow: it scores the same rows into topics.shadow, beside the live version")
	cmd.Flags().BoolVar(&off, "shadow-off", false, "stop shadowing NAME (the version may be left out: NAME@)")
	return cmd
}

func newModelRollbackCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback NAME",
		Short: "Make the previous live version live again",
		Args:  cobra.ExactArgs(1),
		RunE: withRegistry(g, func(cmd *cobra.Command, args []string, r *drivers.ModelRegistry) error {
			a, err := r.Rollback(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rolled %s back to %s\n", a.Name, a.Version)
			return nil
		}),
	}
}

func newModelListCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the stored versions, their roles and their activations",
		Args:  cobra.NoArgs,
		RunE: withRegistry(g, func(cmd *cobra.Command, _ []string, r *drivers.ModelRegistry) error {
			return r.PrintList(cmd.Context(), cmd.OutOrStdout())
		}),
	}
}
