package config

// RunFlags are the flags of `streamscore run` that override a key. A nil field was not
// given on the command line and leaves the key as the file and the environment set it.
type RunFlags struct {
	Group          *string  // --group: group
	ModelPath      *string  // --model: model.path
	Device         *string  // --device: model.device
	Threshold      *float64 // --threshold: threshold
	MetricsAddress *string  // --metrics-addr: metrics.address
	HTTPAddress    *string  // --http-addr: http.address
}

// ApplyRunFlags sets the keys that the given flags override; flags win over the file and
// the environment.
func (c *Config) ApplyRunFlags(f RunFlags) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.Group, f.Group)
	set(&c.Model.Path, f.ModelPath)
	set(&c.Model.Device, f.Device)
	set(&c.Metrics.Address, f.MetricsAddress)
	set(&c.HTTP.Address, f.HTTPAddress)
	if f.Threshold != nil {
		c.Threshold = *f.Threshold
	}
}
