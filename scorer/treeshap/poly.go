package treeshap

import "math"

// The polynomial algorithm (after Yu et al., "Linear TreeShap", NeurIPS 2022). A leaf of
// value v whose path splits on distinct features j with zero fractions z_j (the product of
// the cover shares of the path's branches on j) and one fractions o_j (1 when x takes all
// of them, else 0) gives feature j
//
//	φ_j = v·(o_j − z_j)·∫₀¹ Π_{k≠j} q_k(t) dt,   q_k(t) = z_k + (o_k − z_k)·t,
//
// which is Algorithm 2's sum over coalitions, the Shapley weight |S|!(d−|S|−1)!/d! being
// ∫₀¹ t^|S|(1−t)^(d−|S|−1) dt. The product P(t) = Π_k q_k(t) is built top-down, one
// factor per branch; the leaves' v·P are summed bottom-up, and each branch on j takes its
// share of every leaf under it at once, dividing the sum by q_j. So each node costs one
// pass over the polynomial's values, where Algorithm 2 costs O(depth) per node and
// O(depth²) per leaf.
//
// The polynomials are held by their values at the nodes of an m-point Gauss–Legendre
// rule on [0, 1], which integrates a polynomial of degree up to 2m−1 exactly: the
// integrand has degree d−1 for d distinct features on a path, so m = ⌈d/2⌉ (for the
// most distinct features on a path of the tree) makes the result exact up to float64
// rounding, not an approximation. With t strictly inside (0, 1), q_j(t) > 0 unless
// z_j = o_j = 0, a branch that adds nothing and is skipped.

// maxPoints bounds the rule: the polynomial algorithm explains forests whose paths split
// on at most 2·maxPoints distinct features; others take Algorithm 2 (walk, shap.go).
const maxPoints = 8

// poly is a polynomial in t by its values at the rule's nodes.
type poly [maxPoints]float64

// quadrature is the m-point Gauss–Legendre rule on [0, 1]: nodes t and weights w in
// the first m slots, which are all the loops read.
type quadrature struct {
	m    int
	t, w poly
	one  poly // the polynomial 1: the root's P
	// invOneMinusT is 1/(1−t).
	invOneMinusT poly
}

// newQuadrature returns the m-point rule, its nodes found by Newton's method on the
// Legendre polynomial P_m from the usual starting guesses (to the last bit or two).
func newQuadrature(m int) *quadrature {
	q := &quadrature{m: m}
	for i := range m {
		x := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(m) + 0.5))
		for range 100 { // converges in a handful; the bound only stops a last-bit cycle
			pm, dp := legendre(m, x)
			next := x - pm/dp
			if next == x {
				break
			}
			x = next
		}
		_, dp := legendre(m, x)
		q.t[i] = (1 - x) / 2
		q.w[i] = 1 / ((1 - x*x) * dp * dp)
		q.invOneMinusT[i] = 1 / (1 - q.t[i])
		q.one[i] = 1
	}
	return q
}

// legendre returns P_m(x) and P_m'(x).
func legendre(m int, x float64) (p, dp float64) {
	prev, p := 1.0, x
	for k := 2; k <= m; k++ {
		prev, p = p, (float64(2*k-1)*x*p-float64(k-1)*prev)/float64(k)
	}
	return p, float64(m) * (x*p - prev) / (x*x - 1)
}

// featureState is what the walk knows of one feature on the path to the current node:
// its merged fractions (1, 1 while no branch on it was taken) and, in at, the frame of
// the nearest branch on it above (the feature's first frame while none).
type featureState struct {
	zero, one float64
	at        int
}

// branchFrame belongs to a branch on the path: inv is 1/q(t) of its feature, merged
// down to it; below and share are the sums, over the branches on the same feature met
// first under it, of their leaves' v·P and of their shares v·P/q. Each feature has a
// frame per nesting of its branches a path can reach, and one for none: no copying on
// the way down or up. A feature's first frame stands for no branch: inv is 1, and its
// sums are written but never read.
type branchFrame struct {
	inv, below, share poly
}

// polyWalk is one tree's traversal for one row by the polynomial algorithm.
type polyWalk struct {
	t      *tree
	x      []float32
	phi    []float64
	q      *quadrature
	fs     []featureState
	frames []branchFrame
}

// node adds to total the sum of v·P over the leaves under the branch node ni, whose
// path polynomial P is path.
func (w *polyWalk) node(ni int32, path, total *poly) {
	n := &w.t.nodes[ni]
	hot, cold, hotZero, coldZero := n.yes, n.no, n.yesZero, n.noZero
	if !n.goesTrue(w.x[n.feature]) {
		hot, cold, hotZero, coldZero = cold, hot, coldZero, hotZero
	}
	w.branch(n.feature, hot, hotZero, 1, path, total)
	w.branch(n.feature, cold, coldZero, 0, path, total)
}

// branch visits child, reached from a parent of path polynomial parent by a branch on
// feature j with the given zero and one fractions; it adds the branch's share to phi[j]
// and the child's sum of v·P to total. The share: of each leaf under it whose last
// branch on j this is, v·P/q_j; of the others, what the branches on j below took as
// theirs; all times the change this branch makes to o_j − z_j, so that the branches on
// j of a path add up to its (o_j − z_j). The leaves in below have a q_j no larger than
// this branch's, so (s − below)/q_j rounds no worse than their own shares do.
func (w *polyWalk) branch(j int, child int32, zero, one float64, parent, total *poly) {
	f := &w.fs[j]
	outer := &w.frames[f.at]
	zero, one = f.zero*zero, f.one*one
	if zero == 0 && one == 0 {
		return
	}
	slope := one - zero
	step := slope - (f.one - f.zero)
	m := w.q.m
	if c := &w.t.nodes[child]; c.mode == leaf {
		// The leaf's share is v·P/q = v·parent/q_outer: no division, no frame.
		sum := 0.0
		for p := range total[:m] {
			a := c.value * parent[p] * outer.inv[p]
			s := a * (zero + slope*w.q.t[p])
			sum += w.q.w[p] * a
			outer.below[p] += s
			outer.share[p] += a
			total[p] += s
		}
		w.phi[j] += step * sum
		return
	}
	inner := &w.frames[f.at+1]
	var down, s poly
	w.q.descend(inner, &down, parent, &outer.inv, zero, one)
	outerZero, outerOne := f.zero, f.one
	f.zero, f.one, f.at = zero, one, f.at+1
	w.node(child, &down, &s)
	f.zero, f.one, f.at = outerZero, outerOne, f.at-1
	sum := 0.0
	for p := range s[:m] {
		a := (s[p]-inner.below[p])*inner.inv[p] + inner.share[p]
		sum += w.q.w[p] * a
		outer.below[p] += s[p]
		outer.share[p] += a
		total[p] += s[p]
	}
	w.phi[j] += step * sum
}

// descend readies the frame of a branch whose feature's merged fractions are zero and
// one, so q = zero + (one − zero)·t, and its child's path polynomial, down: parent with
// the feature's factor before the branch, 1/outerInv, replaced by q. Off x's way (one
// 0), q = zero·(1−t) and its inverse takes one division instead of one per node.
func (q *quadrature) descend(inner *branchFrame, down, parent, outerInv *poly, zero, one float64) {
	slope := one - zero
	if one == 0 {
		r := 1 / zero
		for p := range down[:q.m] {
			inner.inv[p] = r * q.invOneMinusT[p]
		}
	} else {
		for p := range down[:q.m] {
			inner.inv[p] = 1 / (zero + slope*q.t[p])
		}
	}
	for p := range down[:q.m] {
		down[p] = parent[p] * (zero + slope*q.t[p]) * outerInv[p]
	}
	inner.below, inner.share = poly{}, poly{}
}

// pathStats returns the most distinct features a root-to-leaf path of t splits on and
// the most branches on one feature such a path takes.
func (t *tree) pathStats(nFeatures int) (distinct, nesting int) {
	count := make([]int, nFeatures)
	var walk func(i int32, d int)
	walk = func(i int32, d int) {
		distinct = max(distinct, d)
		n := &t.nodes[i]
		if n.mode == leaf {
			return
		}
		if count[n.feature] == 0 {
			d++
		}
		count[n.feature]++
		nesting = max(nesting, count[n.feature])
		walk(n.yes, d)
		walk(n.no, d)
		count[n.feature]--
	}
	walk(0, 0)
	return distinct, nesting
}
