package config

import "github.com/streamscore/streamscore/pipeline"

// ExplainConfig is reason codes on alerts (pipeline.ExplainConfig): the TreeSHAP
// contributions of a tree-ensemble model with node covers, for every row that alerts.
type ExplainConfig struct {
	// Enabled computes them (default true); a model that cannot be explained is served
	// without them, and the log says why once per version.
	Enabled bool `yaml:"enabled"`
	// TopK is how many features an alert names, largest |contribution| first (default 5;
	// all of them when the spec has fewer).
	TopK int `yaml:"top_k"`
}

func defaultExplain() ExplainConfig { return ExplainConfig{Enabled: true, TopK: 5} }

// checkExplain validates explain.*.
func (c *Config) checkExplain(p *problems) {
	if c.Explain.TopK < 1 {
		p.add("explain.top_k %d: want at least 1 feature per alert (or set explain.enabled: false)", c.Explain.TopK)
	}
}

// ExplainOptions is the operator's explanation setting.
func (c *Config) ExplainOptions() pipeline.ExplainConfig {
	return pipeline.ExplainConfig{Enabled: c.Explain.Enabled, TopK: c.Explain.TopK}
}
