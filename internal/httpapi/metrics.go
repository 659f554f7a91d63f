package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's collectors, on the job's registry.
type metrics struct {
	requests *prometheus.CounterVec   // route, code
	seconds  *prometheus.HistogramVec // route
	errors   *prometheus.CounterVec   // route, class
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_http_requests_total", Help: "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "streamscore_http_request_seconds", Help: "HTTP API request latency by route, from the request read to the answer written.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_http_errors_total", Help: "HTTP API requests refused or failed, by route and error class (the dead-letter classes for bad events).",
		}, []string{"route", "class"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamscore_http_in_flight", Help: "HTTP API requests being handled.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds, m.errors, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering http metrics: %w", err)
		}
	}
	return m, nil
}

// Error classes of the API's own refusals (bad events use the dead-letter classes).
const (
	classOverloaded   = "overloaded"
	classBodyTooLarge = "body_too_large"
	classContentType  = "content_type"
	classSlowClient   = "slow_client"
	classBadRequest   = "bad_request"
	classNotFound     = "not_found"
	classNotReady     = "not_ready"
	classTimeout      = "timeout"
	classUnavailable  = "unavailable"
)

// outcome is what a handler did: the status it wrote and, for a failure, its class.
type outcome struct {
	code  int
	class string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) outcome

// handle wraps a handler with the concurrency limit and the metrics.
func (s *Server) handle(route string, h handlerFunc) http.Handler {
	latency := s.m.seconds.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var out outcome
		select {
		case s.slots <- struct{}{}:
			s.m.inFlight.Inc()
			out = h(w, r)
			s.m.inFlight.Dec()
			<-s.slots
		default:
			w.Header().Set("Retry-After", "1")
			out = writeError(w, r, http.StatusServiceUnavailable, classOverloaded,
				fmt.Sprintf("%d requests in flight already (http.max_in_flight): retry later", s.opt.MaxInFlight))
		}
		latency.Observe(time.Since(start).Seconds())
		s.m.requests.WithLabelValues(route, strconv.Itoa(out.code)).Inc()
		if out.class != "" {
			s.m.errors.WithLabelValues(route, out.class).Inc()
		}
	})
}

// readBody reads a JSON request body within the limits: 415 for another content type,
// 413 above MaxBodyBytes, 408 when the client sends it slower than ReadTimeout allows.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, outcome, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, writeError(w, r, http.StatusUnsupportedMediaType, classContentType,
				fmt.Sprintf("content type %q: send application/json", ct)), false
		}
	}
	if r.ContentLength > s.opt.MaxBodyBytes {
		return nil, writeError(w, r, http.StatusRequestEntityTooLarge, classBodyTooLarge,
			fmt.Sprintf("body of %d bytes is above http.max_body_bytes (%d)", r.ContentLength, s.opt.MaxBodyBytes)), false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes))
	if err == nil {
		return body, outcome{}, true
	}
	var tooLarge *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooLarge):
		return nil, writeError(w, r, http.StatusRequestEntityTooLarge, classBodyTooLarge,
			fmt.Sprintf("body is above http.max_body_bytes (%d)", s.opt.MaxBodyBytes)), false
	case errors.As(err, &ne) && ne.Timeout():
		w.Header().Set("Connection", "close")
		return nil, writeError(w, r, http.StatusRequestTimeout, classSlowClient,
			fmt.Sprintf("request body not received within http.read_timeout (%v)", s.opt.ReadTimeout)), false
	default:
		return nil, writeError(w, r, http.StatusBadRequest, classBadRequest, "reading the body: "+err.Error()), false
	}
}

// writeError answers a failure: {"error":"…"} on the OIP routes (/v2/...), as the
// protocol has it, and {"error":{"class":…,"message":…}} elsewhere. The class is counted
// in streamscore_http_errors_total either way.
func writeError(w http.ResponseWriter, r *http.Request, code int, class, msg string) outcome {
	if strings.HasPrefix(r.URL.Path, "/v2") {
		writeJSON(w, code, map[string]string{"error": msg})
		return outcome{code: code, class: class}
	}
	return writeErrorWith(w, code, class, msg, nil)
}

func writeErrorWith(w http.ResponseWriter, code int, class, msg string, extra map[string]any) outcome {
	body := map[string]any{"error": map[string]string{"class": class, "message": msg}}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, code, body)
	return outcome{code: code, class: class}
}

func writeJSON(w http.ResponseWriter, code int, v any) outcome {
	b, err := json.Marshal(v)
	if err != nil { // only maps, strings and numbers are written
		panic(fmt.Sprintf("encoding a response: %v", err))
	}
	return writeRaw(w, code, b)
}

func writeRaw(w http.ResponseWriter, code int, b []byte) outcome {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b) // the client may have gone; nothing to do about it
	return outcome{code: code}
}
