package scorer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/streamscore/streamscore/scorer/treeshap"
)

// CoversFile is the name of the covers file a model file may have beside it (as
// `streamscore model covers` writes it); Open reads it when the model's own metadata has
// no covers and the file names the model's version.
const CoversFile = "covers.json"

// explanation is what a Model knows about explaining its scores: the trees with their
// covers, or why it cannot.
type explanation struct {
	trees *treeshap.Ensemble // nil: cannot explain
	why   string             // why not, when trees is nil
}

// readTrees reads the tree ensemble of the model bytes for the model's score column.
func (m *Model) readTrees(raw []byte) {
	e, err := treeshap.Parse(raw, m.scoreCol)
	if err != nil {
		var nt *treeshap.NotTreeEnsembleError
		if errors.As(err, &nt) {
			m.explain = explanation{why: "not a tree ensemble TreeSHAP reads: " + nt.Reason}
		} else {
			m.explain = explanation{why: "its trees could not be read: " + err.Error()}
		}
		return
	}
	if e.NumFeatures() > m.nFeatures {
		m.explain = explanation{why: fmt.Sprintf("its trees read %d features, its input has %d", e.NumFeatures(), m.nFeatures)}
		return
	}
	m.explain = explanation{trees: e}
	if !e.HasCovers() {
		m.explain.why = "the model has no node covers (" + treeshap.ErrNoCovers.Error() + ")"
	}
}

// coversBeside gives the model the covers file beside its file when its metadata has none.
func (m *Model) coversBeside(path string) error {
	if m.explain.trees == nil || m.explain.trees.HasCovers() {
		return nil
	}
	file := filepath.Join(filepath.Dir(path), CoversFile)
	raw, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	c, err := treeshap.ParseCovers(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if c.ModelVersion != m.version {
		m.explain.why = fmt.Sprintf("the model has no node covers: %s beside it holds those of version %s, not %s (write them with `streamscore model covers`)", file, c.ModelVersion, m.version)
		return nil
	}
	return m.SetCovers(c)
}

// SetCovers gives a tree-ensemble model its node covers (from the registry's manifest or
// a covers file), which Explain needs. It is not safe to call while Explain runs.
func (m *Model) SetCovers(c treeshap.Covers) error {
	if m.explain.trees == nil {
		return fmt.Errorf("covers for %s@%s, which cannot be explained: %s", m.name, m.version, m.explain.why)
	}
	if c.ModelVersion != "" && c.ModelVersion != m.version {
		return fmt.Errorf("covers of version %s given to %s@%s", c.ModelVersion, m.name, m.version)
	}
	if err := m.explain.trees.SetCovers(c); err != nil {
		return fmt.Errorf("covers of %s@%s: %w", m.name, m.version, err)
	}
	m.explain.why = ""
	return nil
}

// ExplainStatus is "" when Explain works, else why the model's scores cannot be
// explained (not a tree ensemble, no covers), in words for a log line.
func (m *Model) ExplainStatus() string { return m.explain.why }

// Explain writes the TreeSHAP contribution of each feature of row x to its score into phi
// (at least NumFeatures long) and returns the base value: base + Σ phi is the score to
// about 1e-7 (ONNX Runtime sums the trees in float32, this in float64). Deterministic,
// safe for concurrent use, independent of Score and of other rows.
func (m *Model) Explain(x []float32, phi []float64) (base float64, err error) {
	if m.explain.why != "" {
		return 0, errors.New(m.explain.why)
	}
	return m.explain.trees.Explain(x, phi)
}
