// Package httpapi is streamscore's synchronous front door: the Open Inference Protocol v2
// REST API (/v2/...) on the live operator's batcher and model, and POST /v1/events, which
// validates an event with the operator's decoder, produces it to the input topic and
// answers with its prediction read back from the predictions topic. Neither path has a
// model or a feature pipeline of its own, so the API and the stream cannot disagree.
//
// A Server is built with New and served with Run, which owns its goroutines: when ctx ends
// it stops accepting connections, lets in-flight requests finish within DrainTimeout, and
// returns. The operator must keep scoring until Run has returned, so that a drained
// request gets its answer.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline"
)

// Options are the limits of the API (http.* in streamscore.yaml).
type Options struct {
	// Address to listen on, e.g. 127.0.0.1:8080; ":0" picks a free port (see Server.Addr).
	Address string
	// MaxBodyBytes refuses larger request bodies with 413 (default 1 MiB). Keep it above
	// schema.max_bytes, so that an oversize event gets the oversize class.
	MaxBodyBytes int64
	// MaxInFlight is how many requests are handled at once; more get 503 (default 1024).
	MaxInFlight int
	// ReadTimeout bounds reading a request, headers and body: a slower client gets 408
	// (default 5s).
	ReadTimeout time.Duration
	// RequestTimeout is the deadline of a request once read: an inference, or waiting for
	// an event's prediction (504). A request may ask for less with ?timeout=250ms
	// (default 10s).
	RequestTimeout time.Duration
	// DrainTimeout bounds the wait for in-flight requests at shutdown (default 15s).
	DrainTimeout time.Duration
}

func (o *Options) defaults() error {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 1024
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 5 * time.Second
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 15 * time.Second
	}
	switch {
	case o.Address == "":
		return errors.New("http: no address: set http.address (or --http-addr), e.g. 127.0.0.1:8080")
	case o.MaxBodyBytes < 0, o.MaxInFlight < 0, o.ReadTimeout < 0, o.RequestTimeout < 0, o.DrainTimeout < 0:
		return fmt.Errorf("http: limits must not be negative: %+v", *o)
	}
	return nil
}

// Scorer is the live operator as the API sees it; *pipeline.Operator implements it.
type Scorer interface {
	Infer(ctx context.Context, features []float32, n int) (pipeline.InferResult, error)
	Live() pipeline.Scorer
	NumFeatures() int
}

// Producer writes an event and reports where it landed; *topics.Producer implements it.
type Producer interface {
	ProduceResult(topic string, key, value []byte, done func(partition int32, offset int64, ts time.Time, err error))
}

// Deps are what the API serves from. Events may be nil: no /v1/events.
type Deps struct {
	Scorer Scorer
	// InputName and OutputName name the tensors in model metadata (defaults "features",
	// "score").
	InputName, OutputName string
	// Ready says whether the job can score now (group joined, model loaded).
	Ready  func() bool
	Events *Events
	// Registry gets the API's metrics; nil: a private one.
	Registry prometheus.Registerer
	Logger   *zap.Logger
}

// Events is what POST /v1/events needs.
type Events struct {
	Check       *pipeline.EventCheck
	Topic       string // the input topic events are produced to
	Producer    Producer
	Predictions *Predictions
}

// Server is the HTTP API. Create it with New and call Run once.
type Server struct {
	opt      Options
	d        Deps
	ln       net.Listener
	srv      *http.Server
	m        *metrics
	slots    chan struct{}
	draining atomic.Bool
	log      *zap.Logger
}

// New validates o and binds the listener, so that Addr is known before Run.
func New(o Options, d Deps) (*Server, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if d.Scorer == nil {
		return nil, errors.New("http: no scorer")
	}
	if d.InputName == "" {
		d.InputName = "features"
	}
	if d.OutputName == "" {
		d.OutputName = "score"
	}
	if d.Ready == nil {
		d.Ready = func() bool { return true }
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("http.address %s: %w", o.Address, err)
	}
	s := &Server{opt: o, d: d, ln: ln, m: m, slots: make(chan struct{}, o.MaxInFlight), log: d.Logger}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: o.ReadTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.ReadTimeout + o.RequestTimeout + time.Second,
		IdleTimeout:       time.Minute,
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then drains: new connections are refused, readiness turns
// false, and in-flight requests finish within DrainTimeout. It returns nil after a clean
// drain.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	shut, cancel := context.WithTimeout(context.Background(), s.opt.DrainTimeout)
	defer cancel()
	err := s.srv.Shutdown(shut)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("draining http requests: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v2/health/live", s.handle("health", s.live))
	mux.Handle("GET /v2/health/ready", s.handle("health", s.ready))
	mux.Handle("GET /v2", s.handle("metadata", s.serverMetadata))
	mux.Handle("GET /v2/models/{name}", s.handle("metadata", s.modelMetadata))
	mux.Handle("GET /v2/models/{name}/versions/{version}", s.handle("metadata", s.modelMetadata))
	mux.Handle("GET /v2/models/{name}/ready", s.handle("health", s.modelReady))
	mux.Handle("GET /v2/models/{name}/versions/{version}/ready", s.handle("health", s.modelReady))
	mux.Handle("POST /v2/models/{name}/infer", s.handle("infer", s.infer))
	mux.Handle("POST /v2/models/{name}/versions/{version}/infer", s.handle("infer", s.infer))
	if s.d.Events != nil {
		mux.Handle("POST /v1/events", s.handle("events", s.event))
	}
	return mux
}
