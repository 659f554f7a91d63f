package drivers

import (
	"fmt"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/monitor"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
)

// DriftReferenceOptions are `streamscore drift reference`'s flags.
type DriftReferenceOptions struct {
	Features   string // the training features CSV
	Out        string // where the reference goes
	TrainStart string // first training day, YYYY-MM-DD
	TrainDays  int
	Bins       int
	Source     string // recorded in the reference: the command that built it
}

// WriteDriftReference scores the training rows of the features CSV with model.path and
// writes the model's drift reference (monitor.WriteReferenceFile), as `streamscore drift
// reference` does. c's own drift.reference is left out (it is the one being built); c is
// not changed.
func WriteDriftReference(c *config.Config, o DriftReferenceOptions) (*drift.Reference, error) {
	from, err := time.Parse(time.DateOnly, o.TrainStart)
	if err != nil {
		return nil, fmt.Errorf("--train-start %q: want YYYY-MM-DD: %w", o.TrainStart, err)
	}
	own := *c
	own.Drift.Reference = ""
	cc, _, err := own.Prepare(config.Needs{Kafka: true, Model: true})
	if err != nil {
		return nil, err
	}
	m, err := scorer.Open(cc.ModelOptions())
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return monitor.WriteReferenceFile(o.Features, o.Out, m, cc.Features.Names(),
		monitor.ReferenceOptions{TrainStart: from, TrainDays: o.TrainDays, Bins: o.Bins, Source: o.Source})
}
