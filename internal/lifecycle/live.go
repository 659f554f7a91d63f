package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// Source is what an instance needs of the registry to follow activations.
type Source interface {
	GetModel(ctx context.Context, name, version string) ([]byte, topics.ModelMeta, error)
	Follow(ctx context.Context, o topics.FollowOptions, fn func(topics.Activation) error) error
}

// LiveOptions configure an instance's view of one model name.
type LiveOptions struct {
	Name string
	// Width is the feature spec's width: a version of another width is refused.
	Width int
	// Model is how versions load here (device, threads, input/output); Path and Name are
	// ignored.
	Model scorer.Options
	// MaxBytes refuses versions larger than this (0: no limit), for instances whose memory
	// cannot take any model pushed.
	MaxBytes int64
	// MaxLoadedBytes bounds the bytes of the versions one routing needs at once (live,
	// shadow, ensemble and cascade members, experiment treatment); a routing over it is
	// refused (0: no bound).
	MaxLoadedBytes int64
	// Schema is the event schema that segment rules compare fields of; nil: rules that
	// name a field cannot be built.
	Schema *pipeline.Schema
	// Fallback scores until the log makes a version live (the model.path of the config).
	Fallback *scorer.Model
	// Registry gets streamscore_model_info and the load-failure counter; nil: none.
	Registry prometheus.Registerer
	Logger   *zap.Logger
}

// Live is the set of versions an instance scores with: the live one and an optional
// shadow, following the activation log. Current is safe for concurrent use and is what
// the operator asks once per batch, so a batch never mixes versions; activations are
// applied by the goroutine that calls CatchUp and then Run. A version that cannot be loaded here leaves the current one
// scoring, logged and counted.
type Live struct {
	o      LiveOptions
	src    Source
	log    *zap.Logger
	info   *prometheus.GaugeVec
	failed *prometheus.CounterVec
	swaps  prometheus.Counter

	mu     sync.Mutex
	live   *scorer.Model
	shadow *scorer.Model
	loaded map[string]*scorer.Model // every version loaded, closed by Close: a batch in flight may still use an old one
	refs   references               // drift references of the loaded versions' manifests, under mu
	acts   []topics.Activation
	from   int64 // the next offset of the activation log to read (CatchUp's and Run's goroutine)
	// want is what the log asked for last, loaded or not: an activation of another model
	// role does not retry a version that failed here (each failure is counted once).
	want ModelState
	rt   liveRouting // routing_live.go
}

// NewLive prepares the holder; CatchUp and Run follow the log.
func NewLive(src Source, o LiveOptions) (*Live, error) {
	if o.Fallback == nil {
		return nil, errors.New("lifecycle: a fallback model is required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	l := &Live{
		o: o, src: src, log: o.Logger, live: o.Fallback,
		loaded: map[string]*scorer.Model{},
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamscore_model_info", Help: "1 for each model version this instance scores with, by role (live, shadow).",
		}, []string{"name", "version", "role"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_model_load_failures_total", Help: "Activated versions this instance could not load (it kept scoring with the one it had).",
		}, []string{"name", "version"}),
		swaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamscore_model_swaps_total", Help: "Live or shadow versions changed at a batch boundary.",
		}),
	}
	if o.Registry != nil {
		for _, c := range []prometheus.Collector{l.info, l.failed, l.swaps} {
			if err := o.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("lifecycle: registering metrics: %w", err)
			}
		}
	}
	if err := l.rt.init(o.Registry); err != nil {
		return nil, err
	}
	l.setInfo(o.Fallback, topics.RoleLive)
	return l, nil
}

// Current returns the live version and the shadow (nil: none) to score the next batch
// with.
func (l *Live) Current() (live, shadow *scorer.Model) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live, l.shadow
}

// CatchUp applies every activation written before it was called, so that an instance
// starts scoring with the versions the log made live, and returns. A read that fails is
// retried, with backoff, until ctx ends: ctx bounds the wait. Call it before Run, from
// the goroutine that will call Run.
func (l *Live) CatchUp(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	caught := false
	err := l.follow(ctx, func() { caught = true; stop() }, func() bool { return caught })
	if caught {
		return nil
	}
	return err
}

// Run follows the activation log from where CatchUp stopped (the start when it was not
// called) until ctx ends, and returns ctx's error. Activations are applied on the calling
// goroutine; a read that fails is retried with backoff.
func (l *Live) Run(ctx context.Context) error {
	return l.follow(ctx, nil, func() bool { return false })
}

// follow reads the activation log from l.from on, applying this model's activations,
// until ctx ends; caughtUp (nil: none) is called once every activation written before
// the read began has been applied. Once done says so, later activations are left for the
// next call: CatchUp cancels its read there, and an activation applied with a canceled
// ctx would count as a version this instance cannot load.
func (l *Live) follow(ctx context.Context, caughtUp func(), done func() bool) error {
	wait := followRetryMin
	for {
		before := l.from
		err := l.src.Follow(ctx, topics.FollowOptions{From: l.from, CaughtUp: caughtUp}, func(a topics.Activation) error {
			if done() {
				return nil
			}
			l.from = a.Offset + 1
			if a.Name == l.o.Name {
				l.apply(ctx, a)
			}
			return nil
		})
		if done() || ctx.Err() != nil {
			return ctx.Err()
		}
		if l.from != before {
			wait = followRetryMin // it made progress: the failure is new
		}
		l.log.Warn("following the model registry; resuming", zap.Int64("from", l.from), zap.Duration("in", wait), zap.Error(err))
		// Back off: a registry topic just created answers UNKNOWN_TOPIC_OR_PARTITION for a
		// while, and a loop without a pause would log (and ask the brokers) hundreds of
		// times a second.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, followRetryMax)
	}
}

// followRetryMin and followRetryMax bound the pause before following the registry again.
const (
	followRetryMin = 100 * time.Millisecond
	followRetryMax = 5 * time.Second
)

// apply adds an activation to the log this instance has seen and loads what the log now
// says, keeping the current versions where that fails.
func (l *Live) apply(ctx context.Context, a topics.Activation) {
	l.acts = append(l.acts, a)
	want := State(l.acts)[l.o.Name]
	prev := l.want
	l.want = want
	if v := want.Live.Version; v != "" && (v != prev.Live.Version || want.Live.Offset != prev.Live.Offset) {
		if m, err := l.load(ctx, v); err != nil {
			l.refuse(v, err)
		} else {
			l.set(&l.live, m, topics.RoleLive)
		}
	}
	if v := want.Shadow.Version; v == "" {
		l.set(&l.shadow, nil, topics.RoleShadow)
	} else if v != prev.Shadow.Version {
		if m, err := l.load(ctx, v); err != nil {
			l.refuse(v, err)
		} else {
			l.set(&l.shadow, m, topics.RoleShadow)
		}
	}
	l.reroute(ctx, want)
}

func (l *Live) refuse(version string, err error) {
	l.failed.WithLabelValues(l.o.Name, version).Inc()
	live, _ := l.Current()
	l.log.Error("cannot load the activated model version; still scoring with the current one",
		zap.String("model", l.o.Name), zap.String("version", version), zap.String("scoring_with", live.Version()), zap.Error(err))
}

// set makes m the model of role, for the next batch.
func (l *Live) set(slot **scorer.Model, m *scorer.Model, role topics.Role) {
	l.mu.Lock()
	old := *slot
	*slot = m
	l.mu.Unlock()
	if old == m {
		return
	}
	l.swaps.Inc()
	if old != nil {
		l.info.DeleteLabelValues(old.Name(), old.Version(), string(role))
	}
	l.setInfo(m, role)
	if m != nil {
		l.log.Info("model version activated", zap.String("model", m.Name()), zap.String("version", m.Version()), zap.String("role", string(role)))
	}
}

func (l *Live) setInfo(m *scorer.Model, role topics.Role) {
	if m != nil {
		l.info.WithLabelValues(m.Name(), m.Version(), string(role)).Set(1)
	}
}

// load returns version, loading it from the registry once.
func (l *Live) load(ctx context.Context, version string) (*scorer.Model, error) {
	if version == l.o.Fallback.Version() {
		return l.o.Fallback, nil
	}
	if m, ok := l.loaded[version]; ok {
		return m, nil
	}
	m, ref, meta, err := loadVersion(ctx, l.src, version, l.o)
	if err != nil {
		return nil, err
	}
	l.rt.bytes[version] = meta.Bytes
	l.mu.Lock()
	l.refs.put(version, ref)
	l.mu.Unlock()
	l.loaded[version] = m
	return m, nil
}

// Load reads version of o.Name from the registry and loads it as o says; it also returns
// the drift reference the version's manifest carries (nil: none).
func Load(ctx context.Context, src Loader, version string, o LiveOptions) (*scorer.Model, *drift.Reference, error) {
	m, ref, _, err := loadVersion(ctx, src, version, o)
	return m, ref, err
}

// loadVersion is Load, also returning the version's registry record.
func loadVersion(ctx context.Context, src Loader, version string, o LiveOptions) (*scorer.Model, *drift.Reference, topics.ModelMeta, error) {
	raw, meta, err := src.GetModel(ctx, o.Name, version)
	if err != nil {
		return nil, nil, meta, err
	}
	ref, err := referenceOf(meta)
	if err != nil {
		return nil, nil, meta, err
	}
	if o.MaxBytes > 0 && meta.Bytes > o.MaxBytes {
		return nil, nil, meta, fmt.Errorf("version %s is %d bytes, over this instance's model.max_bytes %d: raise it or ship a smaller model", version, meta.Bytes, o.MaxBytes)
	}
	opts := o.Model
	opts.Path, opts.Name = "", o.Name
	m, err := scorer.OpenBytes(raw, opts)
	if err != nil {
		return nil, nil, meta, err
	}
	if m.NumFeatures() != o.Width {
		m.Close()
		return nil, nil, meta, fmt.Errorf("version %s takes %d inputs but the feature spec has %d", version, m.NumFeatures(), o.Width)
	}
	if err := loadCovers(meta, m); err != nil {
		m.Close()
		return nil, nil, meta, err
	}
	return m, ref, meta, nil
}

// Reference is the drift reference that version's manifest carries, nil when none (or
// the version was not loaded here).
func (l *Live) Reference(version string) *drift.Reference {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refs.byVersion[version]
}

// Close closes every version loaded from the registry (not the fallback). Call it after
// the operator has stopped.
func (l *Live) Close() {
	for _, m := range l.loaded {
		m.Close()
	}
	l.loaded = nil
}

// Choose implements pipeline.Models: the versions of the next batch.
func (l *Live) Choose() pipeline.ModelChoice {
	l.mu.Lock()
	live, shadow, route := l.live, l.shadow, l.rt.route
	l.mu.Unlock()
	c := pipeline.ModelChoice{Live: live, Route: route}
	if shadow != nil { // a nil *scorer.Model must not become a non-nil Scorer
		c.Shadow = shadow
	}
	return c
}

// RoutesOnFields tells the operator to keep each event's fields: segment rules read them.
func (l *Live) RoutesOnFields() bool { return true }

// MarkEncoder writes switch markers in the registry's format (pipeline.Marks).
func MarkEncoder(topic string, partition int32, offset int64, name, version string, routing []byte) (key, value []byte, err error) {
	return topics.EncodeMark(topics.Mark{Topic: topic, Partition: partition, Offset: offset, Name: name, Version: version, Routing: routing})
}
