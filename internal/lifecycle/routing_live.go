package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// liveRouting is the routing part of Live: the Route its batches are chosen with, the
// key it was built from, and the memory of the versions it holds. Fields other than
// route are used only by the goroutine that applies activations; route is under Live.mu.
type liveRouting struct {
	route  *pipeline.Route
	built  string           // live version and routing JSON of route ("": none built)
	bytes  map[string]int64 // registry bytes of each version loaded here
	stages *prometheus.CounterVec
	held   *prometheus.GaugeVec
	heldV  map[string]bool // versions streamscore_model_loaded_bytes reports now
}

func (r *liveRouting) init(reg prometheus.Registerer) error {
	r.bytes, r.heldV = map[string]int64{}, map[string]bool{}
	r.stages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "streamscore_cascade_rows_total", Help: "Rows a cascade's stage decided, by model, cascade (its version string) and stage (1: below the gate; 2: scored again by the second version).",
	}, []string{"name", "cascade", "stage"})
	r.held = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "streamscore_model_loaded_bytes", Help: "Bytes (the model file's size in the registry) of each version this instance serves with now: live, shadow, ensemble and cascade members, experiment treatment.",
	}, []string{"name", "version"})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{r.stages, r.held} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("lifecycle: registering metrics: %w", err)
		}
	}
	return nil
}

// reroute builds the Route of the state the log now leaves, when the live version or the
// routing changed, loading the versions it names; one that cannot be loaded, or a total
// over model.max_loaded_bytes, keeps the current routing, logged and counted.
func (l *Live) reroute(ctx context.Context, want ModelState) {
	rt := routingOf(want)
	l.mu.Lock()
	live := l.live
	l.mu.Unlock()
	spec, err := json.Marshal(rt)
	if err != nil {
		l.refuse("routing", err)
		return
	}
	key := live.Version() + "|" + string(spec)
	if rt.Empty() {
		key = ""
	}
	if key == l.rt.built {
		return
	}
	b := routeBuild{name: l.o.Name, live: live, field: l.fieldIndex, stages: l.rt.stages,
		version: func(v string) (pipeline.Scorer, error) { return l.load(ctx, v) }}
	route, err := b.build(rt)
	if err == nil {
		err = l.checkHeld(live.Version(), want, rt)
	}
	if err != nil {
		l.refuse(RoutingVersions(rt)[0], err)
		return
	}
	l.mu.Lock()
	l.rt.route, l.rt.built = route, key
	l.mu.Unlock()
	l.swaps.Inc()
	l.log.Info("model routing applied", zap.String("model", l.o.Name), zap.String("live", live.Version()), zap.ByteString("routing", spec))
}

func (l *Live) fieldIndex(name string) int {
	if l.o.Schema == nil {
		return -1
	}
	return l.o.Schema.FieldIndex(name)
}

// checkHeld refuses a routing whose versions, with the live and shadow ones, hold more
// than MaxLoadedBytes, and reports each held version's bytes.
func (l *Live) checkHeld(live string, want ModelState, rt topics.Routing) error {
	vs := append([]string{live, want.Shadow.Version}, RoutingVersions(rt)...)
	held, total := map[string]bool{}, int64(0)
	for _, v := range vs {
		if v == "" || held[v] {
			continue
		}
		held[v] = true
		total += l.rt.bytes[v]
	}
	if l.o.MaxLoadedBytes > 0 && total > l.o.MaxLoadedBytes {
		return fmt.Errorf("the routing needs %d versions of %d bytes in all, over model.max_loaded_bytes %d: serve fewer versions or raise it", len(held), total, l.o.MaxLoadedBytes)
	}
	for v := range l.rt.heldV {
		if !held[v] {
			l.rt.held.DeleteLabelValues(l.o.Name, v)
		}
	}
	for v := range held {
		if b, ok := l.rt.bytes[v]; ok {
			l.rt.held.WithLabelValues(l.o.Name, v).Set(float64(b))
		}
	}
	l.rt.heldV = held
	return nil
}

// RoutingVersions are the versions a routing names, in order, each once; "" first when
// none.
func RoutingVersions(rt topics.Routing) []string {
	var out []string
	seen := map[string]bool{}
	add := func(vs ...string) {
		for _, v := range vs {
			if v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	for _, r := range rt.Rules {
		add(r.Serve.Version)
		if e := r.Serve.Ensemble; e != nil {
			add(e.Members...)
		}
		if c := r.Serve.Cascade; c != nil {
			add(c.First, c.Second)
		}
	}
	if e := rt.Experiment; e != nil {
		add(e.Treatment)
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}
