// Package treeshap explains the scores of tree-ensemble ONNX models: it reads the trees
// of an ai.onnx.ml TreeEnsembleClassifier or TreeEnsembleRegressor node from the model
// file (as skl2onnx and onnxmltools write random forests and gradient-boosted trees) and
// computes exact path-dependent TreeSHAP contributions (Lundberg et al. 2018, Algorithm
// 2; what the shap package's TreeExplainer computes with
// feature_perturbation="tree_path_dependent"), in float64, in Go, by the polynomial form
// of Yu et al. 2022 ("Linear TreeShap") where the trees allow it.
//
// It exists because ONNX Runtime computes scores but no explanations. It needs the node
// covers, the number of training rows that reached each node, which ONNX does not store:
// they come from the model's metadata_props (MetadataKey, written by
// testdata/model/train.py) or from counting training rows (CoverCounter), and are given
// with SetCovers. It does not import ONNX Runtime; it reproduces the model's score from
// the trees (Predict) only to prove that it read them right.
package treeshap
