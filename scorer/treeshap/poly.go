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
// integrand has degree d−1 for d distinct features on a path, so m = ⌈d/2⌉ makes the
// result exact up to float64 rounding, not an approximation. With t strictly inside
// (0, 1), q_j(t) > 0 unless z_j = o_j = 0, a branch that adds nothing and is skipped.

// maxPoints bounds the rule: the polynomial algorithm explains forests whose paths split
// on at most 2·maxPoints distinct features; deeper ones take Algorithm 2 (pathWalk).
const maxPoints = 8

// poly is a polynomial in t by its values at the rule's nodes.
type poly [maxPoints]float64

// quadrature is the Gauss–Legendre rule on [0, 1]. Of the maxPoints slots the first m
// are the rule's nodes; the others have weight 0 and t = 1/2, where every q is finite and
// non-zero, so that the loops can run over whole arrays.
type quadrature struct {
	m    int
	t, w poly
	one  poly // the polynomial 1: the root's P, a feature's inv before any branch on it
}

// newQuadrature returns the m-point rule, its nodes found by Newton's method on the
// Legendre polynomial P_m from the usual starting guesses (to the last bit or two).
func newQuadrature(m int) *quadrature {
	q := &quadrature{m: m}
	for i := range maxPoints {
		q.t[i], q.one[i] = 0.5, 1
	}
	for i := range m {
		x := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(m) + 0.5))
		var dp float64
		for range 100 {
			var pm float64
			pm, dp = legendre(m, x)
			dx := pm / dp
			x -= dx
			if math.Abs(dx) <= 1e-17 {
				break
			}
		}
		_, dp = legendre(m, x)
		q.t[i] = (1 - x) / 2
		q.w[i] = 1 / ((1 - x*x) * dp * dp)
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

// featureState is what the walk knows of one feature on the path to the current node.
// zero and one are its merged fractions (1, 1 while no branch on it was taken), inv is
// 1/q(t) at the rule's nodes. below and share belong to the nearest branch above on
// this feature: the sums, over the branches on it met first below that one, of their
// leaves' v·P and of their shares v·P/q.
type featureState struct {
	zero, one    float64
	inv          poly
	below, share poly
}

// polyWalk is one tree's traversal for one row by the polynomial algorithm.
type polyWalk struct {
	t   *tree
	x   []float32
	phi []float64
	q   *quadrature
	fs  []featureState
}

// node returns the sum of v·P over the leaves under node ni, whose path polynomial is P.
func (w *polyWalk) node(ni int32, P *poly) poly {
	n := &w.t.nodes[ni]
	if n.mode == leaf {
		var s poly
		for p := range s {
			s[p] = n.value * P[p]
		}
		return s
	}
	hot, cold, hotZero, coldZero := n.yes, n.no, n.yesZero, n.noZero
	if !n.goesTrue(w.x[n.feature]) {
		hot, cold, hotZero, coldZero = cold, hot, coldZero, hotZero
	}
	s := w.branch(n.feature, hot, hotZero, 1, P)
	c := w.branch(n.feature, cold, coldZero, 0, P)
	for p := range s {
		s[p] += c[p]
	}
	return s
}

// branch visits child, reached from a parent of path polynomial parent by a branch on
// feature j with the given zero and one fractions; it adds the branch's share to phi[j]
// and returns the child's sum of v·P. The share: of each leaf under it whose last branch
// on j this is, v·P/q_j; of the others, what the branches on j below took as theirs; all
// times the change this branch makes to o_j − z_j, so that the branches on j of a path
// add up to its (o_j − z_j).
func (w *polyWalk) branch(j int, child int32, zero, one float64, parent *poly) poly {
	f := &w.fs[j]
	saved := *f
	zero, one = saved.zero*zero, saved.one*one
	if zero == 0 && one == 0 {
		return poly{}
	}
	slope := one - zero
	var P poly
	for p := range P {
		q := zero + slope*w.q.t[p]
		f.inv[p] = 1 / q
		P[p] = parent[p] * q * saved.inv[p]
	}
	f.zero, f.one = zero, one
	f.below, f.share = poly{}, poly{}
	s := w.node(child, &P)
	sum := 0.0
	for p := range s {
		a := (s[p]-f.below[p])*f.inv[p] + f.share[p]
		sum += w.q.w[p] * a
		saved.below[p] += s[p]
		saved.share[p] += a
	}
	w.phi[j] += (slope - (saved.one - saved.zero)) * sum
	*f = saved
	return s
}

// maxDistinct is the most distinct features a root-to-leaf path of t splits on.
func (t *tree) maxDistinct(nFeatures int) int {
	count := make([]int, nFeatures)
	most := 0
	var walk func(i int32, d int)
	walk = func(i int32, d int) {
		most = max(most, d)
		n := &t.nodes[i]
		if n.mode == leaf {
			return
		}
		if count[n.feature] == 0 {
			d++
		}
		count[n.feature]++
		walk(n.yes, d)
		walk(n.no, d)
		count[n.feature]--
	}
	walk(0, 0)
	return most
}
