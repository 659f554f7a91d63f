package treeshap

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The rule integrates every polynomial of degree up to 2m−1 exactly: t^k to 1/(k+1).
func TestQuadratureExact(t *testing.T) {
	for m := 1; m <= maxPoints; m++ {
		q := newQuadrature(m)
		for k := 0; k <= 2*m-1; k++ {
			got := 0.0
			for p := range q.t {
				got += q.w[p] * math.Pow(q.t[p], float64(k))
			}
			if d := math.Abs(got - 1/float64(k+1)); d > 4e-16 {
				t.Errorf("%d points: ∫t^%d = %v, want %v (off by %.3g)", m, k, got, 1/float64(k+1), d)
			}
		}
	}
}

// randomForest is a forest of random trees over nFeatures features (few features: each
// path splits on some several times) with random covers, zeros among them, and the
// covers set; splits use every mode and send NaN either way.
func randomForest(t *testing.T, rng *rand.Rand, trees, depth, nFeatures int) *Ensemble {
	t.Helper()
	e := &Ensemble{nFeatures: nFeatures, offset: 0, sign: 1}
	var covers Covers
	for len(e.trees) < trees {
		var tr tree
		var cov []float64
		var grow func(d int) (int32, float64)
		grow = func(d int) (int32, float64) {
			i := int32(len(tr.nodes))
			tr.nodes = append(tr.nodes, node{yes: -1, no: -1})
			cov = append(cov, 0)
			if d == depth || (d > 2 && rng.IntN(4) == 0) {
				tr.nodes[i].value = rng.NormFloat64()
				cov[i] = float64(rng.IntN(4)) // 0: a leaf no training row reached
				return i, cov[i]
			}
			yes, cy := grow(d + 1)
			no, cn := grow(d + 1)
			tr.nodes[i] = node{feature: rng.IntN(nFeatures), threshold: float32(rng.IntN(5)), mode: mode(1 + rng.IntN(6)),
				yes: yes, no: no, missingTrue: rng.IntN(2) == 0}
			cov[i] = cy + cn
			return i, cov[i]
		}
		if _, c := grow(0); c == 0 {
			continue // the root needs a training row
		}
		d, err := tr.check()
		if err != nil {
			t.Fatal(err)
		}
		tr.depth = d
		e.trees = append(e.trees, tr)
		covers.Trees = append(covers.Trees, cov)
	}
	if err := e.SetCovers(covers); err != nil {
		t.Fatal(err)
	}
	return e
}

// The polynomial algorithm against Algorithm 2 on random forests: repeated features,
// branches no training row took on and off x's way, NaN features, trees that are one leaf.
func TestPolyMatchesAlgorithm2(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 1))
	for _, c := range []struct{ trees, depth, features int }{{3, 0, 2}, {20, 6, 2}, {20, 10, 4}, {10, 14, 6}, {4, 18, 16}} {
		e := randomForest(t, rng, c.trees, c.depth, c.features)
		if e.rules == nil {
			t.Fatalf("%+v: not explained by the polynomial algorithm", c)
		}
		alg2 := *e
		alg2.useAlgorithm2()
		x := make([]float32, c.features)
		got, want := make([]float64, c.features), make([]float64, c.features)
		for range 50 {
			for i := range x {
				x[i] = float32(rng.IntN(5)) - 0.5*float32(rng.IntN(2))
				if rng.IntN(8) == 0 {
					x[i] = float32(math.NaN())
				}
			}
			base, err := e.Explain(x, got)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := alg2.Explain(x, want); err != nil {
				t.Fatal(err)
			}
			sum := base
			for j := range got {
				sum += got[j]
				if d := math.Abs(got[j] - want[j]); !(d <= 1e-12) {
					t.Fatalf("%+v, x %v, feature %d: %v, Algorithm 2 %v", c, x, j, got[j], want[j])
				}
			}
			if d := math.Abs(sum - e.Predict(x)); d > 1e-12 {
				t.Fatalf("%+v, x %v: base + contributions %v, score %v", c, x, sum, e.Predict(x))
			}
		}
	}
}

// A forest with a path on more than 2·maxPoints distinct features has no rule and is
// explained by Algorithm 2, still locally accurate.
func TestDeepForestFallsBack(t *testing.T) {
	n := 2*maxPoints + 1
	e := &Ensemble{nFeatures: n, offset: 0, sign: 1}
	var tr tree
	cov := []float64{}
	for f := range n { // a chain: node 2f splits on f, its false branch a leaf
		i := int32(len(tr.nodes))
		tr.nodes = append(tr.nodes, node{feature: f, threshold: 0.5, mode: branchLEQ, yes: i + 2, no: i + 1},
			node{yes: -1, no: -1, value: float64(f)})
		cov = append(cov, float64(n-f+1), 1)
	}
	tr.nodes = append(tr.nodes, node{yes: -1, no: -1, value: -1})
	cov = append(cov, 1)
	d, err := tr.check()
	if err != nil {
		t.Fatal(err)
	}
	tr.depth = d
	e.trees = []tree{tr}
	if err := e.SetCovers(Covers{Trees: [][]float64{cov}}); err != nil {
		t.Fatal(err)
	}
	if e.rules != nil {
		t.Fatalf("a path on %d features is explained by the polynomial algorithm", n)
	}
	x, phi := make([]float32, n), make([]float64, n)
	x[n-3] = 1
	base, err := e.Explain(x, phi)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range phi {
		base += p
	}
	if d := math.Abs(base - e.Predict(x)); d > 1e-12 {
		t.Fatalf("base + contributions %v, score %v", base, e.Predict(x))
	}
}
