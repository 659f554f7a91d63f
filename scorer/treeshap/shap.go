package treeshap

import (
	"errors"
	"fmt"
	"sync"
)

// ErrNoCovers is returned by Explain on an ensemble whose node covers are unknown: the
// path-dependent algorithm weighs each branch not taken by the share of training rows
// that went down it, which ONNX does not store.
var ErrNoCovers = errors.New("the model has no node covers: push it with `streamscore model push --covers-from TRAINING.csv` or retrain it with testdata/model/train.py, which writes them")

// pathElement is one feature on the path from the root to a node (Lundberg et al. 2018,
// Algorithm 2): the fraction of zero paths (the feature not in the coalition: branches
// weighted by cover) and of one paths (in the coalition: the branch x takes) that flow
// through it, and the weight of coalitions of each size.
type pathElement struct {
	feature   int
	zero, one float64
	pweight   float64
}

// scratch is the working memory of one half of an Explain call. For Algorithm 2, the
// path storage: each recursion level copies its parent's path, so a tree of depth D
// needs (D+2)(D+3)/2 elements; inv[i] is 1/i: the leaf sums multiply by it instead of
// dividing, which is most of their cost. For the polynomial algorithm (poly.go), each
// feature's state and frames; between walks, those of a path without branches.
type scratch struct {
	path     []pathElement
	inv      []float64
	hot      []int     // a leaf's elements on x's way
	phi      []float64 // the second half's contributions
	features []featureState
	frames   []branchFrame
}

// walk is one tree's traversal for one row by Algorithm 2.
type walk struct {
	t   *tree
	x   []float32
	phi []float64
	inv []float64
	hot []int
}

// Explain writes into phi (length at least NumFeatures, zeroed here) the exact
// path-dependent TreeSHAP contribution of each feature to the score of x, and returns
// the base value: the cover-weighted mean score over the training rows. Their sum is
// the score: base + Σ phi == Predict(x) up to float64 rounding (local accuracy). The
// result depends only on x, the trees and the covers, never on other rows or calls.
// Safe for concurrent use. Forests whose paths split on at most 16 distinct features
// (2·maxPoints) take the polynomial algorithm (poly.go), O(nodes·features) per row;
// others Algorithm 2, O(leaves·depth²). Both are exact up to float64 rounding, and agree
// with shap's TreeExplainer to about 1e-14 on the shipped forest.
func (e *Ensemble) Explain(x []float32, phi []float64) (base float64, err error) {
	if !e.hasCovers {
		return 0, ErrNoCovers
	}
	if err := e.checkRow(x); err != nil {
		return 0, err
	}
	if len(phi) < e.nFeatures {
		return 0, fmt.Errorf("phi has room for %d features, the trees read %d", len(phi), e.nFeatures)
	}
	clear(phi)
	// The trees split in two halves, each summed into its own phi, the second added to the
	// first at the end: the bits do not depend on whether the halves ran side by side.
	// They run on two goroutines: an explanation costs most of a millisecond, the scoring
	// goroutine waits for it, and a goroutine costs a microsecond.
	half := len(e.trees) / 2
	second := e.pool.Get().(*scratch)
	defer e.pool.Put(second)
	clear(second.phi)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.explainTrees(x, half, len(e.trees), second.phi, second)
	}()
	first := e.pool.Get().(*scratch)
	defer e.pool.Put(first)
	e.explainTrees(x, 0, half, phi, first)
	<-done
	for i, c := range second.phi {
		phi[i] += c
	}
	if e.sign != 1 {
		for i := range phi {
			phi[i] *= e.sign
		}
	}
	return e.base, nil
}

// explainTrees adds the contributions of trees lo to hi−1 to phi.
func (e *Ensemble) explainTrees(x []float32, lo, hi int, phi []float64, s *scratch) {
	if e.rules == nil {
		for ti := lo; ti < hi; ti++ {
			w := walk{t: &e.trees[ti], x: x, phi: phi, inv: s.inv, hot: s.hot}
			w.recurse(s.path, 0, 0, 1, 1, -1)
		}
		return
	}
	for ti := lo; ti < hi; ti++ {
		t := &e.trees[ti]
		if t.nodes[0].mode == leaf {
			continue // no branch, no contribution
		}
		w := polyWalk{t: t, x: x, phi: phi, q: e.rules[ti], fs: s.features, frames: s.frames}
		root, total := e.rules[ti].one, poly{}
		w.node(0, &root, &total)
	}
}

// initPool readies the algorithm the trees take and its scratch: the polynomial one
// where no path splits on more than 2·maxPoints distinct features, else Algorithm 2.
func (e *Ensemble) initPool() {
	distinct, nesting := make([]int, len(e.trees)), 0
	for i := range e.trees {
		var n int
		distinct[i], n = e.trees[i].pathStats(e.nFeatures)
		if distinct[i] > 2*maxPoints {
			e.useAlgorithm2()
			return
		}
		nesting = max(nesting, n)
	}
	var rules [maxPoints + 1]*quadrature
	e.rules = make([]*quadrature, len(e.trees))
	for i := range e.trees {
		m := max(1, (distinct[i]+1)/2)
		if rules[m] == nil {
			rules[m] = newQuadrature(m)
		}
		e.rules[i] = rules[m]
	}
	e.pool = &sync.Pool{New: func() any { return e.newPolyScratch(nesting + 1) }}
}

// useAlgorithm2 has Explain take Algorithm 2.
func (e *Ensemble) useAlgorithm2() {
	maxDepth := 0
	for i := range e.trees {
		maxDepth = max(maxDepth, e.trees[i].depth)
	}
	e.rules = nil
	size := (maxDepth + 2) * (maxDepth + 3) / 2
	inv := make([]float64, maxDepth+3)
	for i := 1; i < len(inv); i++ {
		inv[i] = 1 / float64(i)
	}
	e.pool = &sync.Pool{New: func() any {
		return &scratch{path: make([]pathElement, size), inv: inv, hot: make([]int, maxDepth+2), phi: make([]float64, e.nFeatures)}
	}}
}

// newPolyScratch is the polynomial algorithm's scratch: each feature's state and its
// frames, one per branch on it a path can nest, and one for none (whose inv is 1).
func (e *Ensemble) newPolyScratch(frames int) *scratch {
	s := &scratch{phi: make([]float64, e.nFeatures), features: make([]featureState, e.nFeatures),
		frames: make([]branchFrame, e.nFeatures*frames)}
	for i := range s.features {
		s.features[i] = featureState{zero: 1, one: 1, at: i * frames}
		for p := range s.frames[i*frames].inv {
			s.frames[i*frames].inv[p] = 1
		}
	}
	return s
}

// recurse is Algorithm 2's RECURSE as shap's tree_shap_recursive lays it out: parent is
// the path so far (depth+1 elements from the start of path), stored at path[0:], and
// this level's copy goes right after it.
func (w *walk) recurse(parent []pathElement, depth int, ni int32, zero, one float64, feature int) {
	path := parent[depth+1:]
	copy(path, parent[:depth+1])
	extend(path, depth, zero, one, feature, w.inv)
	t := w.t
	n := &t.nodes[ni]
	if n.mode == leaf {
		w.leaf(path, depth, n.value)
		return
	}
	hot, cold, hotZero, coldZero := n.no, n.yes, n.noZero, n.yesZero
	if n.goesTrue(w.x[n.feature]) {
		hot, cold, hotZero, coldZero = n.yes, n.no, n.yesZero, n.noZero
	}
	inZero, inOne := 1.0, 1.0
	k := 0
	for ; k <= depth; k++ {
		if path[k].feature == n.feature {
			break
		}
	}
	if k <= depth {
		inZero, inOne = path[k].zero, path[k].one
		unwind(path, depth, k, w.inv)
		depth--
	}
	// A branch with zero fractions 0 and 0 (off x's way, and no training row took it)
	// adds nothing (every weight under it is 0), and unwinding its feature further down
	// would divide by its zero fraction and turn the sums into NaN: skip it.
	if hotZero*inZero != 0 || inOne != 0 {
		w.recurse(path, depth+1, hot, hotZero*inZero, inOne, n.feature)
	}
	if coldZero*inZero != 0 {
		w.recurse(path, depth+1, cold, coldZero*inZero, 0, n.feature)
	}
}

// leaf adds the contributions of one leaf (value v, path of depth+1 elements) to phi:
// each element's unwound path weight times (one − zero) times v. one is 0 or 1 (recurse
// passes 1, 0, or the one of an earlier element). An element off x's way (one == 0)
// unwinds to (Σᵢ pweightᵢ/(depth−i))/zero, so its contribution is −(that sum)·v, the same
// for all of them: taken once per leaf, and added without a branch (whether an element is
// on x's way is a coin flip to the branch predictor). An element on x's way (one == 1)
// needs its own O(depth) recurrence; those run four at a time, as independent chains the
// processor overlaps, with the same operations in the same order as one at a time.
func (w *walk) leaf(path []pathElement, depth int, v float64) {
	cold := 0.0
	for i := depth - 1; i >= 0; i-- {
		cold += path[i].pweight * w.inv[depth-i]
	}
	cold *= float64(depth+1) * v
	nh := 0
	for i := 1; i <= depth; i++ {
		el := &path[i]
		w.phi[el.feature] -= cold * (1 - el.one)
		w.hot[nh] = i
		nh += int(el.one)
	}
	for j := 0; j < nh; j += 4 {
		var ks [4]int
		for q := range ks { // the last one to three: a pass costs what one chain does, so pad it
			ks[q] = w.hot[min(j+q, nh-1)]
		}
		s := unwoundSums4(path, depth, &ks, w.inv)
		for q := 0; q < len(ks) && j+q < nh; q++ {
			el := &path[ks[q]]
			w.phi[el.feature] += s[q] * (1 - el.zero) * v
		}
	}
}

// unwoundSums4 is, for four elements whose one is 1, the total weight of the path with
// that element removed, without removing it (Algorithm 2's UNWOUNDSUM), in one pass. The
// divisions of the algorithm are multiplications by reciprocals (inv[i] = 1/i): that
// changes the last bits of a contribution (well inside shap's own float64 agreement; the
// golden test allows 1e-5), not its determinism.
func unwoundSums4(path []pathElement, depth int, ks *[4]int, inv []float64) [4]float64 {
	z0, z1, z2, z3 := path[ks[0]].zero, path[ks[1]].zero, path[ks[2]].zero, path[ks[3]].zero
	n0 := path[depth].pweight
	n1, n2, n3 := n0, n0, n0
	var t0, t1, t2, t3 float64
	for i := depth - 1; i >= 0; i-- {
		r, f, pw := inv[i+1], float64(depth-i), path[i].pweight
		a0, a1, a2, a3 := n0*r, n1*r, n2*r, n3*r
		t0, t1, t2, t3 = t0+a0, t1+a1, t2+a2, t3+a3
		n0, n1, n2, n3 = pw-a0*z0*f, pw-a1*z1*f, pw-a2*z2*f, pw-a3*z3*f
	}
	d1 := float64(depth + 1)
	return [4]float64{t0 * d1, t1 * d1, t2 * d1, t3 * d1}
}

// extend adds a feature with the given zero and one fractions to the path of depth+1
// elements (EXTEND in Algorithm 2).
func extend(path []pathElement, depth int, zero, one float64, feature int, inv []float64) {
	path[depth] = pathElement{feature: feature, zero: zero, one: one}
	if depth == 0 {
		path[depth].pweight = 1
	}
	r := inv[depth+1]
	if one != 0 {
		for i := depth - 1; i >= 0; i-- {
			path[i+1].pweight += one * path[i].pweight * float64(i+1) * r
			path[i].pweight = zero * path[i].pweight * float64(depth-i) * r
		}
		return
	}
	for i := depth - 1; i >= 0; i-- {
		path[i].pweight = zero * path[i].pweight * float64(depth-i) * r
	}
}

// unwind removes element k from the path (UNWIND in Algorithm 2).
func unwind(path []pathElement, depth, k int, inv []float64) {
	one, zero := path[k].one, path[k].zero
	next := path[depth].pweight
	d1, r := float64(depth+1), inv[depth+1]
	if one != 0 {
		invOne := 1 / one
		for i := depth - 1; i >= 0; i-- {
			tmp := path[i].pweight
			path[i].pweight = next * d1 * inv[i+1] * invOne
			next = tmp - path[i].pweight*zero*float64(depth-i)*r
		}
	} else {
		invZero := 1 / zero
		for i := depth - 1; i >= 0; i-- {
			path[i].pweight = path[i].pweight * d1 * invZero * inv[depth-i]
		}
	}
	for i := k; i < depth; i++ {
		path[i].feature, path[i].zero, path[i].one = path[i+1].feature, path[i+1].zero, path[i+1].one
	}
}
