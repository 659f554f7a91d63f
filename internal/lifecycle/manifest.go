package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// Manifest is the optional bundle a version carries in the registry beside its file.
type Manifest struct {
	// Reference is the training reference of drift monitoring (testdata/model/reference.json
	// for the shipped model): with it, every instance that scores the version monitors
	// its drift, whatever the instance's own drift.reference says.
	Reference json.RawMessage `json:"reference,omitempty"`
	// Covers are the node covers of a tree ensemble (treeshap.Covers), without which its
	// alerts carry no reasons: covers.json beside the model file, or counted at push
	// time from a training export (--covers-from).
	Covers json.RawMessage `json:"covers,omitempty"`
}

// ManifestWithReference reads a reference file for a push: it must be well formed,
// describe the feature spec's features (names, in order), and have been built with the
// version being pushed when it names one.
func ManifestWithReference(path, version string, features []string) (json.RawMessage, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the drift reference: %w", err)
	}
	ref, err := drift.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := ref.Check(features); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if ref.ModelVersion != "" && ref.ModelVersion != version {
		return nil, fmt.Errorf("%s was built with version %s, not %s: rebuild it with `streamscore drift reference` on this model's training rows, or push without it", path, ref.ModelVersion, version)
	}
	return json.Marshal(Manifest{Reference: raw})
}

// referenceOf returns the drift reference in meta's manifest, or nil.
func referenceOf(meta topics.ModelMeta) (*drift.Reference, error) {
	if len(meta.Manifest) == 0 {
		return nil, nil
	}
	var m Manifest
	if err := json.Unmarshal(meta.Manifest, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s@%s: %w", meta.Name, meta.Version, err)
	}
	if len(m.Reference) == 0 {
		return nil, nil
	}
	return drift.Parse(m.Reference)
}

// references keeps the drift references that loaded versions carry. Safe for concurrent
// use: the operator asks from its batcher goroutine while a follower loads versions.
type references struct {
	byVersion map[string]*drift.Reference
}

func (r *references) put(version string, ref *drift.Reference) {
	if ref == nil {
		return
	}
	if r.byVersion == nil {
		r.byVersion = map[string]*drift.Reference{}
	}
	r.byVersion[version] = ref
}

// BundleOptions describe a push from files: the model file and what travels with it.
type BundleOptions struct {
	PushOptions
	// Golden and Reference are files; empty: golden.jsonl and reference.json beside the
	// model file, when present. A Golden file that is named but missing, or any golden
	// file with a line of another shape or width, refuses the push. Reference "none"
	// pushes no reference.
	Golden, Reference string
	// Features are the feature spec's names, which the reference must describe.
	Features []string
	// Covers is a covers file (.json) or a training export (.csv, .parquet) to count
	// them from; empty: covers.json beside the model file, when present; "none": none.
	Covers string
}

// PushBundle pushes the model file at path with its golden rows and its drift reference
// in the manifest, as `streamscore model push` does.
func PushBundle(ctx context.Context, st Store, path string, o BundleOptions) (topics.ModelMeta, error) {
	dir := filepath.Dir(path)
	golden, err := goldenBeside(dir, o)
	if err != nil {
		return topics.ModelMeta{}, fmt.Errorf("pushing model %s: %w; nothing was stored", o.Name, err)
	}
	o.PushOptions.Golden = golden
	if o.Reference == "" {
		if beside := filepath.Join(dir, "reference.json"); fileExists(beside) {
			o.Reference = beside
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return topics.ModelMeta{}, fmt.Errorf("pushing model %s: %w", o.Name, err)
	}
	var m Manifest
	if o.Reference != "" && o.Reference != "none" {
		withRef, err := ManifestWithReference(o.Reference, scorer.Version(raw), o.Features)
		if err != nil {
			return topics.ModelMeta{}, fmt.Errorf("pushing model %s: the reference: %w; nothing was stored", o.Name, err)
		}
		if err := json.Unmarshal(withRef, &m); err != nil {
			return topics.ModelMeta{}, err
		}
	}
	if m.Covers, err = coversOf(path, raw, o); err != nil {
		return topics.ModelMeta{}, fmt.Errorf("pushing model %s: the covers: %w; nothing was stored", o.Name, err)
	}
	if m.Reference != nil || m.Covers != nil {
		if o.Manifest, err = json.Marshal(m); err != nil {
			return topics.ModelMeta{}, err
		}
	}
	return PushFile(ctx, st, path, o.PushOptions)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
