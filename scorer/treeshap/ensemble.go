package treeshap

import (
	"fmt"
	"strings"
	"sync"
)

// mode is how a branch node compares a feature with its threshold; the true branch is
// taken when the comparison holds (ai.onnx.ml TreeEnsemble* nodes_modes).
type mode uint8

const (
	leaf mode = iota
	branchLEQ
	branchLT
	branchGTE
	branchGT
	branchEQ
	branchNEQ
)

var modes = map[string]mode{"LEAF": leaf, "BRANCH_LEQ": branchLEQ, "BRANCH_LT": branchLT,
	"BRANCH_GTE": branchGTE, "BRANCH_GT": branchGT, "BRANCH_EQ": branchEQ, "BRANCH_NEQ": branchNEQ}

// node is one node of a tree, children as indexes into the tree's nodes.
type node struct {
	feature     int
	threshold   float32
	yes, no     int32 // the true and false branch; -1 on leaves
	mode        mode
	missingTrue bool // a NaN feature takes the true branch (else it compares false)
	value       float64
	// The branches' zero fractions, cover(yes)/cover and cover(no)/cover (0 where no
	// training row reached the node), set with the covers: all that Explain needs of
	// them. 48 bytes a node: the walks read every node of every tree.
	yesZero, noZero float64
}

// goesTrue reports whether x takes n's true branch, as ONNX Runtime decides it in float32.
func (n *node) goesTrue(x float32) bool {
	if x != x { // NaN
		return n.missingTrue
	}
	switch n.mode {
	case branchLEQ:
		return x <= n.threshold
	case branchLT:
		return x < n.threshold
	case branchGTE:
		return x >= n.threshold
	case branchGT:
		return x > n.threshold
	case branchEQ:
		return x == n.threshold
	default:
		return x != n.threshold
	}
}

// tree is one tree; nodes[0] is its root.
type tree struct {
	nodes []node
	depth int
}

// Ensemble is the trees of an ai.onnx.ml TreeEnsembleClassifier or TreeEnsembleRegressor
// reduced to the one output column that is the score: each leaf holds its contribution
// to that column, so the score is Offset + Sign·Σ(leaf of x in each tree). It is
// immutable once built and safe for concurrent use.
type Ensemble struct {
	trees     []tree
	nFeatures int
	// Offset and Sign map the trees' sum to the score column: (0, 1) but for the first
	// column of a binary classifier that stores one class's weights (ONNX Runtime
	// scores it 1 − sum).
	offset, sign float64
	metadata     map[string]string
	hasCovers    bool
	base         float64    // the base value, known with the covers
	pool         *sync.Pool // of *scratch
	// rules, set with the covers, are the quadratures of the polynomial algorithm
	// (poly.go), one per tree: fewer distinct features on its paths, fewer points to
	// carry. Nil: Explain takes Algorithm 2.
	rules []*quadrature
}

// NotTreeEnsembleError says why a model cannot be explained by this package.
type NotTreeEnsembleError struct{ Reason string }

func (e *NotTreeEnsembleError) Error() string { return e.Reason }

// Parse reads the tree ensemble of an ONNX model file for the output column scoreCol
// (of probabilities for a classifier, of the targets for a regressor; negative: the last
// column, the scorer's default). A model that is
// not one supported tree-ensemble node returns a *NotTreeEnsembleError. The model's
// metadata_props "tree_covers", when present, give the node covers (see Covers).
func Parse(raw []byte, scoreCol int) (*Ensemble, error) {
	m, err := parseONNX(raw)
	if err != nil {
		return nil, err
	}
	var found *onnxNode
	for i := range m.nodes {
		n := &m.nodes[i]
		if n.domain == "ai.onnx.ml" && (n.opType == "TreeEnsembleClassifier" || n.opType == "TreeEnsembleRegressor") {
			if found != nil {
				return nil, &NotTreeEnsembleError{"the model has more than one tree-ensemble node"}
			}
			found = n
		}
	}
	if found == nil {
		return nil, &NotTreeEnsembleError{"the model has no ai.onnx.ml TreeEnsembleClassifier or TreeEnsembleRegressor node"}
	}
	e, err := build(found, scoreCol)
	if err != nil {
		return nil, err
	}
	e.metadata = m.metadata
	if c, ok := m.metadata[MetadataKey]; ok {
		cov, err := ParseCovers([]byte(c))
		if err != nil {
			return nil, fmt.Errorf("metadata_props %s: %w", MetadataKey, err)
		}
		if err := e.SetCovers(cov); err != nil {
			return nil, fmt.Errorf("metadata_props %s: %w", MetadataKey, err)
		}
	}
	return e, nil
}

// leafWeights are the per-leaf weights of the score column: treeids, nodeids, weights.
type leafWeights struct {
	trees, nodes []int64
	weights      []float32
}

// build checks n's attributes and turns them into trees.
func build(n *onnxNode, scoreCol int) (*Ensemble, error) {
	for _, a := range []string{"nodes_values_as_tensor", "class_weights_as_tensor", "target_weights_as_tensor", "base_values_as_tensor", "nodes_hitrates_as_tensor"} {
		if n.tensors[a] {
			return nil, &NotTreeEnsembleError{fmt.Sprintf("%s has %s (double precision): not supported", n.opType, a)}
		}
	}
	if pt := string(n.str["post_transform"]); pt != "" && pt != "NONE" {
		return nil, &NotTreeEnsembleError{fmt.Sprintf("%s has post_transform %s: contributions are only exact for NONE", n.opType, pt)}
	}
	e := &Ensemble{offset: 0, sign: 1}
	var lw leafWeights
	if n.opType == "TreeEnsembleClassifier" {
		if err := e.classWeights(n, scoreCol, &lw); err != nil {
			return nil, err
		}
	} else {
		if err := e.targetWeights(n, scoreCol, &lw); err != nil {
			return nil, err
		}
	}
	if err := e.buildTrees(n, &lw); err != nil {
		return nil, fmt.Errorf("%s: %w", n.opType, err)
	}
	return e, nil
}

func (e *Ensemble) classWeights(n *onnxNode, scoreCol int, lw *leafWeights) error {
	if len(n.floats["base_values"]) > 0 {
		return &NotTreeEnsembleError{"TreeEnsembleClassifier has base_values: not supported"}
	}
	labels := len(n.ints["classlabels_int64s"]) + len(n.strings["classlabels_strings"])
	ids, trees, nodes, w := n.ints["class_ids"], n.ints["class_treeids"], n.ints["class_nodeids"], n.floats["class_weights"]
	if len(ids) != len(trees) || len(ids) != len(nodes) || len(ids) != len(w) {
		return fmt.Errorf("TreeEnsembleClassifier: class_ids, class_treeids, class_nodeids and class_weights differ in length (%d, %d, %d, %d)", len(ids), len(trees), len(nodes), len(w))
	}
	distinct := map[int64]bool{}
	for _, id := range ids {
		distinct[id] = true
	}
	if scoreCol < 0 {
		scoreCol = labels - 1
	}
	target := int64(scoreCol)
	if labels == 2 && len(distinct) == 1 {
		// ONNX Runtime's binary case: the weights are those of the second class, and the
		// first is 1 − their sum.
		for id := range distinct {
			target = id
		}
		if scoreCol == 0 {
			e.offset, e.sign = 1, -1
		}
	}
	for i, id := range ids {
		if id == target {
			lw.trees, lw.nodes, lw.weights = append(lw.trees, trees[i]), append(lw.nodes, nodes[i]), append(lw.weights, w[i])
		}
	}
	return nil
}

func (e *Ensemble) targetWeights(n *onnxNode, scoreCol int, lw *leafWeights) error {
	if len(n.ints["n_targets"]) != 1 {
		return fmt.Errorf("TreeEnsembleRegressor has no n_targets")
	}
	if agg := string(n.str["aggregate_function"]); agg != "" && agg != "SUM" && agg != "AVERAGE" {
		return &NotTreeEnsembleError{fmt.Sprintf("TreeEnsembleRegressor has aggregate_function %s: contributions are only exact for SUM and AVERAGE", agg)}
	}
	ids, trees, nodes, w := n.ints["target_ids"], n.ints["target_treeids"], n.ints["target_nodeids"], n.floats["target_weights"]
	if len(ids) != len(trees) || len(ids) != len(nodes) || len(ids) != len(w) {
		return fmt.Errorf("TreeEnsembleRegressor: target_ids, target_treeids, target_nodeids and target_weights differ in length (%d, %d, %d, %d)", len(ids), len(trees), len(nodes), len(w))
	}
	if scoreCol < 0 {
		scoreCol = int(n.ints["n_targets"][0]) - 1
	}
	if b := n.floats["base_values"]; scoreCol < len(b) {
		e.offset = float64(b[scoreCol])
	}
	for i, id := range ids {
		if id == int64(scoreCol) {
			lw.trees, lw.nodes, lw.weights = append(lw.trees, trees[i]), append(lw.nodes, nodes[i]), append(lw.weights, w[i])
		}
	}
	if string(n.str["aggregate_function"]) == "AVERAGE" {
		e.sign = 1 / float64(countTrees(n.ints["nodes_treeids"]))
	}
	return nil
}

func countTrees(ids []int64) int {
	seen := map[int64]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	return max(len(seen), 1)
}

// nodeKey is a node's identity in the nodes_* attributes.
type nodeKey struct{ tree, node int64 }

// buildTrees lays out each tree's nodes in the order ONNX lists them, root first.
func (e *Ensemble) buildTrees(n *onnxNode, lw *leafWeights) error {
	tids, nids := n.ints["nodes_treeids"], n.ints["nodes_nodeids"]
	yes, no := n.ints["nodes_truenodeids"], n.ints["nodes_falsenodeids"]
	at, treeOf, err := e.layOut(n)
	if err != nil {
		return err
	}
	for i := range tids {
		t := &e.trees[treeOf[tids[i]]]
		nd := &t.nodes[at[nodeKey{tids[i], nids[i]}]]
		if nd.mode == leaf {
			continue
		}
		y, okY := at[nodeKey{tids[i], yes[i]}]
		f, okN := at[nodeKey{tids[i], no[i]}]
		if !okY || !okN {
			return fmt.Errorf("node %d of tree %d names a child that is not in the tree", nids[i], tids[i])
		}
		nd.yes, nd.no = int32(y), int32(f)
	}
	for i := range lw.trees {
		t, ok := treeOf[lw.trees[i]]
		j, ok2 := at[nodeKey{lw.trees[i], lw.nodes[i]}]
		if !ok || !ok2 {
			return fmt.Errorf("a weight names node %d of tree %d, which does not exist", lw.nodes[i], lw.trees[i])
		}
		e.trees[t].nodes[j].value += float64(lw.weights[i])
	}
	for i := range e.trees {
		d, err := e.trees[i].check()
		if err != nil {
			return fmt.Errorf("tree %d: %w", i, err)
		}
		e.trees[i].depth = d
	}
	return nil
}

// layOut creates the trees and their nodes, without links: at is each node's position in
// its tree, treeOf each tree id's index.
func (e *Ensemble) layOut(n *onnxNode) (at map[nodeKey]int, treeOf map[int64]int, err error) {
	tids, nids, feats := n.ints["nodes_treeids"], n.ints["nodes_nodeids"], n.ints["nodes_featureids"]
	vals, yes, no, modeNames := n.floats["nodes_values"], n.ints["nodes_truenodeids"], n.ints["nodes_falsenodeids"], n.strings["nodes_modes"]
	missing := n.ints["nodes_missing_value_tracks_true"]
	cnt := len(tids)
	for _, l := range []int{len(nids), len(feats), len(vals), len(yes), len(no), len(modeNames)} {
		if cnt == 0 || l != cnt {
			return nil, nil, fmt.Errorf("the nodes_* attributes are empty or differ in length")
		}
	}
	if len(missing) != 0 && len(missing) != cnt {
		return nil, nil, fmt.Errorf("nodes_missing_value_tracks_true has %d values for %d nodes", len(missing), cnt)
	}
	at, treeOf = map[nodeKey]int{}, map[int64]int{}
	for i := range cnt {
		t, ok := treeOf[tids[i]]
		if !ok {
			t = len(e.trees)
			treeOf[tids[i]] = t
			e.trees = append(e.trees, tree{})
		}
		md, ok := modes[string(modeNames[i])]
		if !ok {
			return nil, nil, fmt.Errorf("node %d of tree %d has mode %q", nids[i], tids[i], modeNames[i])
		}
		at[nodeKey{tids[i], nids[i]}] = len(e.trees[t].nodes)
		nd := node{feature: int(feats[i]), threshold: vals[i], mode: md, yes: -1, no: -1,
			missingTrue: len(missing) > 0 && missing[i] != 0}
		e.nFeatures = max(e.nFeatures, nd.feature+1)
		e.trees[t].nodes = append(e.trees[t].nodes, nd)
	}
	return at, treeOf, nil
}

// check verifies that the tree is a tree rooted at node 0 (every node reached once) and
// returns its depth.
func (t *tree) check() (int, error) {
	if len(t.nodes) == 0 || t.nodes[0].yes == 0 {
		return 0, fmt.Errorf("empty tree")
	}
	seen := make([]bool, len(t.nodes))
	depth := 0
	var walk func(i int32, d int) error
	walk = func(i int32, d int) error {
		if seen[i] {
			return fmt.Errorf("node reached twice: not a tree")
		}
		seen[i] = true
		depth = max(depth, d)
		if n := &t.nodes[i]; n.mode != leaf {
			if err := walk(n.yes, d+1); err != nil {
				return err
			}
			return walk(n.no, d+1)
		}
		return nil
	}
	if err := walk(0, 0); err != nil {
		return 0, err
	}
	for i, s := range seen {
		if !s {
			return 0, fmt.Errorf("node at position %d is not reached from the root", i)
		}
	}
	return depth, nil
}

// NumFeatures is the number of features the trees read (the highest feature index + 1).
func (e *Ensemble) NumFeatures() int { return e.nFeatures }

// NumTrees is the number of trees.
func (e *Ensemble) NumTrees() int { return len(e.trees) }

// Metadata returns the model's metadata_props value for key.
func (e *Ensemble) Metadata(key string) string { return e.metadata[key] }

// FeatureNames are the model's metadata_props "feature_names" (comma-separated, as
// testdata/model/train.py writes them), or nil.
func (e *Ensemble) FeatureNames() []string {
	s := e.metadata["feature_names"]
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// leafOf returns the index of the leaf x reaches in t.
func (t *tree) leafOf(x []float32) int32 {
	i := int32(0)
	for {
		n := &t.nodes[i]
		if n.mode == leaf {
			return i
		}
		if n.goesTrue(x[n.feature]) {
			i = n.yes
		} else {
			i = n.no
		}
	}
}

// Predict is the score of row x from the trees, in float64 (ONNX Runtime sums in
// float32, so the two agree to about 1e-7 relative).
func (e *Ensemble) Predict(x []float32) float64 {
	s := 0.0
	for ti := range e.trees {
		t := &e.trees[ti]
		s += t.nodes[t.leafOf(x)].value
	}
	return e.offset + e.sign*s
}

// checkRow says what is wrong with a row's width.
func (e *Ensemble) checkRow(x []float32) error {
	if len(x) < e.nFeatures {
		return fmt.Errorf("row has %d features, the trees read %d", len(x), e.nFeatures)
	}
	return nil
}
