package config

import (
	"os"
	"time"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
)

// DriftConfig is drift monitoring against the model's training reference
// (pipeline.DriftConfig): tumbling event-time windows per input partition and version.
type DriftConfig struct {
	Enabled bool `yaml:"enabled"`
	// Window is the length of the event-time windows (default 168h: a week, from Monday
	// 00:00 UTC). A window should hold every cycle the features follow, or its PSI
	// measures the cycle: the reference model's features follow the day and the week
	// (TX_DURING_NIGHT, TX_DURING_WEEKEND), and its reference holds 7 training days. On
	// the reference workload (400 events an hour over 3 partitions) a week holds about
	// 23,500 rows per partition; an hour holds 11 to 270 (median 129), never min_count.
	Window time.Duration `yaml:"window"`
	// MinCount is the rows a window needs before its PSI is judged (default 500).
	MinCount int64 `yaml:"min_count"`
	// Reference is the training reference of model.path (`streamscore drift reference`
	// writes it); it applies to the model version it was built for.
	Reference string `yaml:"reference"`
}

func defaultDrift() DriftConfig {
	return DriftConfig{Enabled: true, Window: 7 * 24 * time.Hour, MinCount: 500}
}

// checkDrift validates drift.* and reads the reference file.
func (c *Config) checkDrift(p *problems) *drift.Reference {
	if !c.Drift.Enabled {
		return nil
	}
	if c.Drift.Window <= 0 {
		p.add("drift.window %v: want a positive duration such as 1h", c.Drift.Window)
	}
	if c.Drift.MinCount < 1 {
		p.add("drift.min_count %d: want at least 1 row per judged window", c.Drift.MinCount)
	}
	if c.Topics.Drift == "" {
		p.add("topics.drift: name the drift topic, or set drift.enabled: false")
	}
	if c.Drift.Reference == "" {
		return nil // no version has a reference: nothing is counted, and the log says so
	}
	raw, err := os.ReadFile(c.Resolve(c.Drift.Reference))
	if err != nil {
		p.add("drift.reference: %v (build it with `streamscore drift reference`, or leave the key out)", err)
		return nil
	}
	ref, err := drift.Parse(raw)
	if err != nil {
		p.add("drift.reference %s: %v", c.Drift.Reference, err)
	}
	return ref
}

// DriftOptions is the operator's drift monitoring, nil when drift.enabled is off. The
// reference of drift.reference applies to the version it was built from (every version
// of its model when it names none); other versions are not monitored.
func (c *Compiled) DriftOptions() *pipeline.DriftConfig {
	if !c.Drift.Enabled {
		return nil
	}
	ref := c.DriftReference
	return &pipeline.DriftConfig{
		Topic: c.Topics.Drift, Window: c.Drift.Window, MinCount: c.Drift.MinCount,
		Reference: func(m pipeline.Scorer) *drift.Reference {
			if ref == nil || (ref.ModelVersion != "" && ref.ModelVersion != m.Version()) {
				return nil
			}
			return ref
		},
	}
}
