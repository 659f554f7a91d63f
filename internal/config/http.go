package config

import (
	"time"

	"github.com/streamscore/streamscore/internal/httpapi"
)

// HTTPConfig is the synchronous scoring API of `run` (internal/httpapi): the Open
// Inference Protocol v2 and POST /v1/events. Off while Address is empty.
type HTTPConfig struct {
	// Address to listen on, e.g. 127.0.0.1:8080 (flag --http-addr); empty: no API.
	Address string `yaml:"address"`
	// MaxBodyBytes refuses larger bodies with 413 (default 1MiB); keep it above
	// schema.max_bytes so that an oversize event gets its class.
	MaxBodyBytes string `yaml:"max_body_bytes"`
	// MaxInFlight requests at once; more get 503 (default 1024).
	MaxInFlight int `yaml:"max_in_flight"`
	// ReadTimeout bounds reading a request: slower clients get 408 (default 5s).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// RequestTimeout is a request's deadline once read (default 10s): an event whose
	// prediction does not come by then gets 504 with its offset.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// DrainTimeout bounds the wait for in-flight requests at shutdown (default 15s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

func (c *Config) checkHTTP(p *problems) {
	h := c.HTTP
	if h.MaxBodyBytes != "" {
		n, err := ParseBytes(h.MaxBodyBytes)
		switch {
		case err != nil:
			p.add("http.max_body_bytes %v", err)
		case n < int64(c.Schema.MaxBytes):
			p.add("http.max_body_bytes %s is below schema.max_bytes (%d): raise it, or an oversize event gets 413 instead of its class", h.MaxBodyBytes, c.Schema.MaxBytes)
		}
	}
	if h.MaxInFlight < 0 || h.ReadTimeout < 0 || h.RequestTimeout < 0 || h.DrainTimeout < 0 {
		p.add("http: max_in_flight, read_timeout, request_timeout and drain_timeout must not be negative (0: the default)")
	}
}

// HTTPOptions is http.* for internal/httpapi; ok is false when http.address is empty.
func (c *Compiled) HTTPOptions() (o httpapi.Options, ok bool) {
	h := c.HTTP
	o = httpapi.Options{
		Address: h.Address, MaxInFlight: h.MaxInFlight, ReadTimeout: h.ReadTimeout,
		RequestTimeout: h.RequestTimeout, DrainTimeout: h.DrainTimeout,
	}
	if h.MaxBodyBytes != "" {
		o.MaxBodyBytes, _ = ParseBytes(h.MaxBodyBytes) // checked by Validate
	}
	return o, h.Address != ""
}
