package drivers

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/topics"
)

// Routing among several versions of a model, as `streamscore experiment` and
// `streamscore model serve` work on it; the checks and the records are
// internal/lifecycle's.

func (r *ModelRegistry) routingOptions() lifecycle.RoutingOptions {
	return lifecycle.RoutingOptions{Schema: r.cc.Schema, MaxLoadedBytes: r.cc.Model.MaxLoadedBytes, By: lifecycle.CurrentUser()}
}

// StartExperiment starts e on every instance (lifecycle.StartExperiment).
func (r *ModelRegistry) StartExperiment(ctx context.Context, e lifecycle.ExperimentSpec) (topics.Activation, error) {
	if e.Model == "" {
		e.Model = r.cc.Model.Name
	}
	return lifecycle.StartExperiment(ctx, r.st, e, r.routingOptions())
}

// StopExperiment ends the experiment name, promoting its treatment when asked.
func (r *ModelRegistry) StopExperiment(ctx context.Context, name string, promote bool) (topics.Activation, error) {
	return lifecycle.StopExperiment(ctx, r.st, name, promote, lifecycle.CurrentUser())
}

// Serve makes rules (lifecycle.ParseRule's syntax) serve model; none: the live version
// alone again.
func (r *ModelRegistry) Serve(ctx context.Context, model string, rules []string) (topics.Activation, error) {
	if model == "" {
		model = r.cc.Model.Name
	}
	parsed := make([]topics.Rule, 0, len(rules))
	for _, s := range rules {
		rule, err := lifecycle.ParseRule(s)
		if err != nil {
			return topics.Activation{}, fmt.Errorf("serving %s: %w; %w", model, err, lifecycle.ErrRouting)
		}
		parsed = append(parsed, rule)
	}
	return lifecycle.Serve(ctx, r.st, model, parsed, r.routingOptions())
}

// PrintExperiments writes every experiment, running or stopped, to w.
func (r *ModelRegistry) PrintExperiments(ctx context.Context, w io.Writer) error {
	es, err := lifecycle.Experiments(ctx, r.st)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODEL\tCONTROL\tTREATMENT\tSHARE\tSALT\tMIRROR\tSTARTED\tSTOPPED")
	for _, e := range es {
		stopped := "running"
		if e.Stopped != nil {
			stopped = e.Stopped.At.UTC().Format(time.RFC3339) + " by " + e.Stopped.By
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g%%\t%q\t%t\t%s by %s\t%s\n", e.Name, e.Model, e.Control, e.Treatment, e.Share, e.Salt, e.Mirror,
			e.Started.At.UTC().Format(time.RFC3339), e.Started.By, stopped)
	}
	return tw.Flush()
}
