package drivers

import (
	"context"
	"errors"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// tableSources wires the reference tables that lookup features read, each a reader of its
// whole topic like the labels (config.Bounded for backfills and exports); live scoring
// also dead-letters the table rows that fail validation. The returned function closes
// the readers.
func tableSources(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, oc *pipeline.Config, e config.Extent) (func(), error) {
	var opened []*topics.Feedback
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for name, o := range c.TableOptions(e) {
		f, err := topics.NewFeedback(ctx, kc, o)
		if err != nil {
			closeAll()
			return func() {}, err
		}
		opened = append(opened, f)
		if oc.Tables == nil {
			oc.Tables = map[string]pipeline.FeedbackSource{}
		}
		oc.Tables[name] = f
	}
	oc.TableDeadLetters = e == config.Unbounded
	return closeAll, nil
}

// SimTableTopics returns the topics of the config's tables named merchants and customers,
// which the simulator writes (sim/tables.go); an error when it has neither.
func SimTableTopics(c *config.Config) (merchants, customers string, err error) {
	for _, tc := range c.Tables {
		switch tc.Name {
		case "merchants":
			merchants = tc.Topic
		case "customers":
			customers = tc.Topic
		}
	}
	if merchants == "" && customers == "" {
		return "", "", errors.New("--tables: the config has no table named merchants or customers (see docs/features.md for the simulator's tables)")
	}
	return merchants, customers, nil
}

func nonEmpty(names []string) []string {
	out := names[:0]
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}
