package config

import (
	"net"
	"strconv"
)

// MetricsOptions is what the metrics server of `run` serves (drivers.MetricsServer).
type MetricsOptions struct {
	// Address to listen on; empty: no server.
	Address string
	// PProf adds the Go profiler under /debug/pprof/.
	PProf bool
}

// MetricsOptions is metrics.* for drivers.MetricsServer.
func (c *Compiled) MetricsOptions() MetricsOptions {
	return MetricsOptions{Address: c.Metrics.Address, PProf: c.Metrics.PProf}
}

func (c *Config) checkMetrics(p *problems) {
	m := c.Metrics
	if m.Address == "" {
		if m.PProf {
			p.add("metrics.pprof: true needs metrics.address (the profiler is served there): set an address such as 127.0.0.1%s, or pprof: false", DefaultMetricsAddress)
		}
		return
	}
	_, port, err := net.SplitHostPort(m.Address)
	if err != nil {
		p.add("metrics.address %q: want host:port or :port, e.g. %s (empty: no server)", m.Address, DefaultMetricsAddress)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add("metrics.address %q: the port must be a number from 0 to 65535", m.Address)
	}
}
