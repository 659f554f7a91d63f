package lifecycle

import (
	"context"
	"fmt"
	"sort"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// History scores each record of a replay with the version that was live for it, as the
// switch markers that live scoring wrote say: the version of the last marker at or before
// the record's offset in its partition. Records before a partition's first marker were
// scored before the registry knew of them: the fallback (the config's model) scores
// them. Choose is safe for concurrent use: History does not change once built.
type History struct {
	fallback *scorer.Model
	parts    map[pipeline.TopicPartition][]switchPoint
	loaded   map[string]*scorer.Model
	routes   map[string]*pipeline.Route // by live version and routing JSON
	refs     references                 // written only while NewHistory builds it
}

type switchPoint struct {
	offset int64
	m      *scorer.Model
	route  *pipeline.Route // the routing the marker records; nil: m alone
}

// Loader loads a registry version (a Live, or the backfill's own loader).
type Loader interface {
	GetModel(ctx context.Context, name, version string) ([]byte, topics.ModelMeta, error)
}

// NewHistory loads every version that the markers of o.Name on the input topics name.
// A version that cannot be loaded is an error: a replay that scored its records with
// another version would not reproduce them.
func NewHistory(ctx context.Context, src Loader, marks []topics.Mark, inputs []string, o LiveOptions) (*History, error) {
	h := &History{fallback: o.Fallback, parts: map[pipeline.TopicPartition][]switchPoint{}, loaded: map[string]*scorer.Model{}, routes: map[string]*pipeline.Route{}}
	in := map[string]bool{}
	for _, t := range inputs {
		in[t] = true
	}
	for _, mk := range marks {
		if mk.Name != o.Name || !in[mk.Topic] {
			continue
		}
		m, err := h.load(ctx, src, mk.Version, o)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("replaying by history: the markers name %s@%s: %w", mk.Name, mk.Version, err)
		}
		route, err := h.route(ctx, src, m, mk, o)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("replaying by history: the marker of %s/%d@%d: %w", mk.Topic, mk.Partition, mk.Offset, err)
		}
		tp := pipeline.TopicPartition{Topic: mk.Topic, Partition: mk.Partition}
		h.parts[tp] = append(h.parts[tp], switchPoint{mk.Offset, m, route})
	}
	for _, pts := range h.parts {
		// Markers arrive in log order; a record scored twice (at-least-once redelivery)
		// may be marked twice: the later marker, the one that scored the surviving
		// prediction last, wins.
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].offset < pts[j].offset })
	}
	return h, nil
}

func (h *History) load(ctx context.Context, src Loader, version string, o LiveOptions) (*scorer.Model, error) {
	if version == o.Fallback.Version() {
		return o.Fallback, nil
	}
	if m, ok := h.loaded[version]; ok {
		return m, nil
	}
	m, ref, err := Load(ctx, src, version, o)
	if err != nil {
		return nil, err
	}
	h.refs.put(version, ref)
	h.loaded[version] = m
	return m, nil
}

// route rebuilds the routing a marker records, with live as its live version; one
// Route per distinct routing, so that its ensembles and cascades are built once.
func (h *History) route(ctx context.Context, src Loader, live *scorer.Model, mk topics.Mark, o LiveOptions) (*pipeline.Route, error) {
	if len(mk.Routing) == 0 {
		return nil, nil
	}
	key := live.Version() + "|" + string(mk.Routing)
	if r, ok := h.routes[key]; ok {
		return r, nil
	}
	rt, err := topics.DecodeRouting(mk.Routing)
	if err != nil {
		return nil, err
	}
	field := func(string) int { return -1 }
	if o.Schema != nil {
		field = o.Schema.FieldIndex
	}
	b := routeBuild{name: o.Name, live: live, field: field,
		version: func(v string) (pipeline.Scorer, error) { return h.load(ctx, src, v, o) }}
	r, err := b.build(rt)
	if err != nil {
		return nil, err
	}
	h.routes[key] = r
	return r, nil
}

// Versions is how many distinct versions the markers name.
func (h *History) Versions() int { return len(h.loaded) + 1 }

// Choose implements pipeline.Models.
func (h *History) Choose() pipeline.ModelChoice {
	return pipeline.ModelChoice{Live: h.fallback, Route: &pipeline.Route{ID: "history", Pick: h.versionOf}}
}

// RoutesOnFields tells the operator to keep each event's fields: segment rules read them.
func (h *History) RoutesOnFields() bool { return true }

func (h *History) versionOf(r *pipeline.Record, fields []float64) pipeline.Scorer {
	pts := h.parts[pipeline.TopicPartition{Topic: r.Topic, Partition: r.Partition}]
	// The last switch point at or before the offset; among equal offsets, the last one.
	i := sort.Search(len(pts), func(i int) bool { return pts[i].offset > r.Offset })
	if i == 0 {
		return h.fallback
	}
	if p := pts[i-1]; p.route != nil {
		return p.route.Pick(r, fields)
	}
	return pts[i-1].m
}

// Reference is the drift reference that version's manifest carries, nil when none.
func (h *History) Reference(version string) *drift.Reference { return h.refs.byVersion[version] }

// Close closes the versions loaded from the registry (not the fallback).
func (h *History) Close() {
	for _, m := range h.loaded {
		m.Close()
	}
	h.loaded = nil
}
