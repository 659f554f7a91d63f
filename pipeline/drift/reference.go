// Package drift holds a model's training reference (fixed quantile bins of every feature
// and of the score over the training rows) and the arithmetic of drift against it: bin
// counts, the population stability index (PSI) and the share of values outside the
// training range. It is a leaf package so that the operator (which counts), the model
// registry (which stores a reference with a version), the drift report and the command
// that builds a reference share one format.
package drift

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// DefaultBins is the number of quantile bins a reference is built with: deciles.
const DefaultBins = 10

// Hist is the reference distribution of one feature (or of the score): bin i holds the
// values x with Edges[i-1] <= x < Edges[i] (the first bin everything below Edges[0], the
// last everything at or above the last edge), so there are len(Edges)+1 bins. The edges
// are quantiles of the training values with duplicates removed: a feature with few
// distinct values gets fewer bins rather than empty ones.
type Hist struct {
	Name   string    `json:"name"`
	Edges  []float64 `json:"edges"`
	Counts []int64   `json:"counts"`
	// Min and Max are the training range; values outside it are counted apart as well.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Bins is the number of bins.
func (h *Hist) Bins() int { return len(h.Edges) + 1 }

// Bin returns the bin of x. The edges are few (at most DefaultBins-1 by default), so a
// linear scan beats a binary search.
func (h *Hist) Bin(x float64) int {
	i := 0
	for i < len(h.Edges) && x >= h.Edges[i] {
		i++
	}
	return i
}

// Outside reports whether x lies outside the training range.
func (h *Hist) Outside(x float64) bool { return x < h.Min || x > h.Max }

// Reference is a model's training reference.
type Reference struct {
	// Model is the model name it was built for; Rows the number of training rows.
	Model string `json:"model"`
	// ModelVersion is the version it was built with (streamscore's content hash); the
	// reference applies to that version only, or to any when empty.
	ModelVersion string `json:"model_version,omitempty"`
	Rows         int64  `json:"rows"`
	// Source says how it was made (the command), for whoever reproduces it.
	Source   string `json:"source,omitempty"`
	Features []Hist `json:"features"`
	Score    Hist   `json:"score"`
}

// Parse reads a reference and checks that it is well formed.
func Parse(b []byte) (*Reference, error) {
	var r Reference
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("drift reference: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Reference) validate() error {
	if r.Rows <= 0 || len(r.Features) == 0 {
		return errors.New("drift reference: no training rows or no features: rebuild it with `streamscore drift reference`")
	}
	for _, h := range append([]Hist{r.Score}, r.Features...) {
		var n int64
		for _, c := range h.Counts {
			n += c
		}
		switch {
		case len(h.Counts) != h.Bins():
			return fmt.Errorf("drift reference: %q has %d edges and %d counts, want %d counts", h.Name, len(h.Edges), len(h.Counts), h.Bins())
		case !slices.IsSorted(h.Edges) || len(slices.Compact(slices.Clone(h.Edges))) != len(h.Edges):
			return fmt.Errorf("drift reference: the edges of %q must be strictly increasing", h.Name)
		case n != r.Rows:
			return fmt.Errorf("drift reference: the counts of %q sum to %d, not the %d rows", h.Name, n, r.Rows)
		}
	}
	return nil
}

// Check fails unless the reference describes the features names, in that order: a
// reference of another feature spec would compare unrelated columns.
func (r *Reference) Check(names []string) error {
	got := make([]string, len(r.Features))
	for i := range r.Features {
		got[i] = r.Features[i].Name
	}
	if !slices.Equal(got, names) {
		return fmt.Errorf("drift reference has features [%s], the model takes [%s]: rebuild the reference for this model",
			strings.Join(got, ","), strings.Join(names, ","))
	}
	return nil
}

// Build makes the reference of the training rows: rows[i] is row i's feature vector and
// scores[i] its score. Each feature gets bins quantile bins.
func Build(model string, names []string, rows [][]float32, scores []float32, bins int) (*Reference, error) {
	if len(rows) == 0 || len(rows) != len(scores) {
		return nil, fmt.Errorf("drift reference: %d rows and %d scores: need as many of each, at least one", len(rows), len(scores))
	}
	if bins < 2 {
		bins = DefaultBins
	}
	r := &Reference{Model: model, Rows: int64(len(rows)), Features: make([]Hist, len(names))}
	col := make([]float64, len(rows))
	for j, name := range names {
		for i, row := range rows {
			if len(row) != len(names) {
				return nil, fmt.Errorf("drift reference: row %d has %d features, want %d", i, len(row), len(names))
			}
			col[i] = float64(row[j])
		}
		r.Features[j] = hist(name, col, bins)
	}
	for i, s := range scores {
		col[i] = float64(s)
	}
	r.Score = hist("score", col, bins)
	return r, nil
}

// hist bins values at their quantiles k/bins; it sorts values.
func hist(name string, values []float64, bins int) Hist {
	slices.Sort(values)
	n := len(values)
	h := Hist{Name: name, Min: values[0], Max: values[n-1]}
	for k := 1; k < bins; k++ {
		e := values[k*n/bins]
		// an edge at the minimum would open an empty first bin; a repeated one an empty bin
		if e > h.Min && (len(h.Edges) == 0 || e > h.Edges[len(h.Edges)-1]) {
			h.Edges = append(h.Edges, e)
		}
	}
	h.Counts = make([]int64, h.Bins())
	for _, v := range values {
		h.Counts[h.Bin(v)]++
	}
	return h
}

// psiFloor stands in for an empty bin's share, whose logarithm would be infinite.
const psiFloor = 1e-4

// PSI is the population stability index of the actual bin counts against the reference
// counts: Σ (a−e)·ln(a/e) over the bins' shares, an empty share counted as 1e-4. Rules of
// thumb: below 0.1 stable, 0.1–0.25 a moderate shift, above 0.25 a major one. It is 0
// when either side has no values.
func PSI(reference, actual []int64) float64 {
	var nr, na int64
	for i := range reference {
		nr += reference[i]
		na += actual[i]
	}
	if nr == 0 || na == 0 {
		return 0
	}
	var psi float64
	for i := range reference {
		e := max(float64(reference[i])/float64(nr), psiFloor)
		a := max(float64(actual[i])/float64(na), psiFloor)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}
