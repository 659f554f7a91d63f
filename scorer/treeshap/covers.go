package treeshap

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// MetadataKey is the ONNX metadata_props key under which testdata/model/train.py writes
// a model's covers (the JSON of Covers).
const MetadataKey = "tree_covers"

// Covers are the node covers of an ensemble: how many training rows reached each node.
// Trees[t][i] is the cover of the i-th node of tree t in the order the model's nodes_*
// attributes list them (for skl2onnx, the node id). ModelVersion, when set, is the
// version of the model they were computed for (its file's SHA-256 prefix).
type Covers struct {
	ModelVersion string      `json:"model_version,omitempty"`
	Rows         int64       `json:"rows,omitempty"`
	Trees        [][]float64 `json:"trees"`
}

// ParseCovers reads the JSON of Covers.
func ParseCovers(raw []byte) (Covers, error) {
	var c Covers
	if err := json.Unmarshal(raw, &c); err != nil {
		return Covers{}, fmt.Errorf("reading tree covers (want {\"trees\":[[cover of each node]...]}): %w", err)
	}
	if len(c.Trees) == 0 {
		return Covers{}, errors.New("tree covers have no trees")
	}
	return c, nil
}

// HasCovers reports whether the ensemble knows its node covers, without which Explain
// returns ErrNoCovers.
func (e *Ensemble) HasCovers() bool { return e.hasCovers }

// SetCovers gives the ensemble its node covers. They must have the ensemble's shape, be
// finite and non-negative, give the root a positive cover, and give every branch node
// the sum of its children's (a cover is a count of rows, each of which goes one way).
// It is not safe to call while Explain runs; call it before sharing the ensemble.
func (e *Ensemble) SetCovers(c Covers) error {
	if len(c.Trees) != len(e.trees) {
		return fmt.Errorf("tree covers are for %d trees, the model has %d: they belong to another model", len(c.Trees), len(e.trees))
	}
	for ti := range e.trees {
		t := &e.trees[ti]
		if len(c.Trees[ti]) != len(t.nodes) {
			return fmt.Errorf("tree covers of tree %d have %d nodes, the model's tree has %d: they belong to another model", ti, len(c.Trees[ti]), len(t.nodes))
		}
		for i, v := range c.Trees[ti] {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("tree covers: node %d of tree %d has cover %v; covers are row counts", i, ti, v)
			}
		}
		if c.Trees[ti][0] <= 0 {
			return fmt.Errorf("tree covers: the root of tree %d has cover %v: no training row reached it", ti, c.Trees[ti][0])
		}
		for i := range t.nodes {
			n := &t.nodes[i]
			if n.mode == leaf {
				continue
			}
			sum := c.Trees[ti][n.yes] + c.Trees[ti][n.no]
			if math.Abs(sum-c.Trees[ti][i]) > 1e-9*math.Max(1, c.Trees[ti][i]) {
				return fmt.Errorf("tree covers: node %d of tree %d has cover %v but its children %v: they belong to another model", i, ti, c.Trees[ti][i], sum)
			}
		}
	}
	base := 0.0
	for ti := range e.trees {
		t, cover := &e.trees[ti], c.Trees[ti]
		mean := 0.0
		for i := range t.nodes {
			n := &t.nodes[i]
			n.yesZero, n.noZero = 0, 0
			switch {
			case n.mode == leaf:
				mean += n.value * cover[i]
			case cover[i] > 0:
				n.yesZero, n.noZero = cover[n.yes]/cover[i], cover[n.no]/cover[i]
			}
		}
		base += mean / cover[0]
	}
	e.base = e.offset + e.sign*base
	e.hasCovers = true
	e.initPool()
	return nil
}

// CoverCounter counts the training rows that reach each node: feed it every training
// row with Add, then take Covers.
type CoverCounter struct {
	e      *Ensemble
	counts [][]float64
	rows   int64
}

// NewCoverCounter starts counting covers for e's trees.
func NewCoverCounter(e *Ensemble) *CoverCounter {
	c := &CoverCounter{e: e, counts: make([][]float64, len(e.trees))}
	for i := range e.trees {
		c.counts[i] = make([]float64, len(e.trees[i].nodes))
	}
	return c
}

// Add passes the row x down every tree.
func (c *CoverCounter) Add(x []float32) error {
	if err := c.e.checkRow(x); err != nil {
		return err
	}
	for ti := range c.e.trees {
		t := &c.e.trees[ti]
		i := int32(0)
		for {
			c.counts[ti][i]++
			n := &t.nodes[i]
			if n.mode == leaf {
				break
			}
			if n.goesTrue(x[n.feature]) {
				i = n.yes
			} else {
				i = n.no
			}
		}
	}
	c.rows++
	return nil
}

// Covers returns the counts so far.
func (c *CoverCounter) Covers(modelVersion string) Covers {
	return Covers{ModelVersion: modelVersion, Rows: c.rows, Trees: c.counts}
}
