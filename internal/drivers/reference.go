package drivers

import (
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/monitor"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
)

// WriteDriftReference scores the training rows of the features CSV at csvPath with
// model.path and writes the model's drift reference to out (monitor.WriteReferenceFile),
// as `streamscore drift reference` does.
func WriteDriftReference(cc *config.Compiled, csvPath, out string, o monitor.ReferenceOptions) (*drift.Reference, error) {
	m, err := scorer.Open(cc.ModelOptions())
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return monitor.WriteReferenceFile(csvPath, out, m, cc.Features.Names(), o)
}
