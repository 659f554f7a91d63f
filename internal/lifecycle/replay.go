package lifecycle

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// Replay chooses the versions a backfill of inputs scores with: whatIf (NAME@VERSION,
// e.g. from --model) for every event, or, when whatIf is "", the version that was live
// for each event, from the switch markers of live scoring (History). It returns them, a
// description for the summary and a function that closes what it loaded; r is read only
// while Replay runs.
func Replay(ctx context.Context, r *topics.Registry, inputs []string, o LiveOptions, whatIf string, log *zap.Logger) (pipeline.Models, string, func(), error) {
	if whatIf != "" {
		return whatIfModel(ctx, r, o, whatIf)
	}
	marks, err := r.Marks(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	h, err := NewHistory(ctx, r, marks, inputs, o)
	if err != nil {
		return nil, "", nil, err
	}
	desc := o.Fallback.Version()
	if n := h.Versions(); n > 1 {
		desc = fmt.Sprintf("history (%d versions)", n)
	}
	log.Info("replaying with the versions live scoring used", zap.String("versions", desc))
	return h, desc, h.Close, nil
}

// whatIfModel loads NAME@VERSION to score every event of a replay with.
func whatIfModel(ctx context.Context, r *topics.Registry, o LiveOptions, spec string) (pipeline.Models, string, func(), error) {
	name, version, ok := strings.Cut(spec, "@")
	if !ok || name == "" || version == "" {
		return nil, "", nil, fmt.Errorf("--model %q: want NAME@VERSION, e.g. %s@3f2a9c1e", spec, o.Name)
	}
	if name != o.Name {
		return nil, "", nil, fmt.Errorf("--model %q: the config scores model %s; a what-if replays one of its versions", spec, o.Name)
	}
	full, err := Resolve(ctx, r, name, version)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--model: %w", err)
	}
	m, ref, err := Load(ctx, r, full, o)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--model %s: %w", spec, err)
	}
	return fixedModel{m, ref}, m.Version(), func() { m.Close() }, nil
}

// fixedModel scores every batch with one version.
type fixedModel struct {
	m   *scorer.Model
	ref *drift.Reference
}

// Reference is the drift reference of the version's manifest.
func (f fixedModel) Reference(version string) *drift.Reference {
	if version != f.m.Version() {
		return nil
	}
	return f.ref
}

func (f fixedModel) Choose() pipeline.ModelChoice { return pipeline.ModelChoice{Live: f.m} }
