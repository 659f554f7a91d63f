#!/usr/bin/env python3
"""Write golden TreeSHAP contributions of the shipped forest, computed by the shap package.

The Go explainer (scorer/treeshap) is tested against this file: every contribution of
every row within 1e-5 of shap's. shap's TreeExplainer is given the very trees of the
ONNX model (thresholds and leaf values as ONNX stores them, in float32) and the node
covers in covers.json, as a custom tree dictionary, so the test compares the two
algorithms and nothing else:

    /tmp/venv-shap/bin/pip install -r testdata/model/requirements.txt   # pins shap too
    /tmp/venv-shap/bin/python testdata/model/shap_golden.py

Output shap_golden.jsonl: one line per explained golden row,
{"row": i, "score": s, "base_value": b, "contributions": [...]} where i is the line of
golden.jsonl (0-based), s the trees' score (sum of leaf values), b shap's expected value,
contributions one per feature in feature_names order (float64, repr round-trips).
Rows explained: every --every-th golden row (default 8: 250 rows, of which about half
score at or above the reference threshold 0.5: golden.jsonl is half frauds).
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import shap

HERE = os.path.dirname(os.path.abspath(__file__))


def attr(node, name):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return None


def trees_of(model_path, covers):
    m = onnx.load(model_path)
    nodes = [n for n in m.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(nodes) != 1:
        sys.exit("want one TreeEnsembleClassifier node")
    n = nodes[0]
    if attr(n, "post_transform") not in (None, b"NONE"):
        sys.exit("post_transform must be NONE")
    tids, nids = attr(n, "nodes_treeids"), attr(n, "nodes_nodeids")
    # Binary classifier with one class's weights: the score (column 1) is their sum.
    if len(set(attr(n, "class_ids"))) != 1 or len(attr(n, "classlabels_int64s")) != 2:
        sys.exit("want the binary case of skl2onnx (one class's weights)")
    weight = {}
    for t, nid, w in zip(attr(n, "class_treeids"), attr(n, "class_nodeids"), attr(n, "class_weights")):
        weight[(t, nid)] = weight.get((t, nid), 0.0) + float(np.float32(w))
    order = []  # tree ids in the order the nodes list them
    pos = {}
    for i, (t, nid) in enumerate(zip(tids, nids)):
        if t not in pos:
            pos[t] = {}
            order.append(t)
        pos[t][nid] = (len(pos[t]), i)
    yes, no, feats = attr(n, "nodes_truenodeids"), attr(n, "nodes_falsenodeids"), attr(n, "nodes_featureids")
    vals, modes = attr(n, "nodes_values"), attr(n, "nodes_modes")
    miss = attr(n, "nodes_missing_value_tracks_true") or [0] * len(tids)
    trees = []
    for ti, t in enumerate(order):
        k = len(pos[t])
        left, right, default = np.full(k, -1, np.int32), np.full(k, -1, np.int32), np.full(k, -1, np.int32)
        feat, thr = np.zeros(k, np.int32), np.zeros(k, np.float64)
        value, cover = np.zeros(k, np.float64), np.asarray(covers["trees"][ti], np.float64)
        if len(cover) != k:
            sys.exit(f"covers of tree {ti} have {len(cover)} nodes, the tree {k}")
        for nid, (p, i) in pos[t].items():
            if modes[i] == b"LEAF":
                value[p] = weight.get((t, nid), 0.0)
                continue
            if modes[i] != b"BRANCH_LEQ":
                sys.exit(f"mode {modes[i]} not supported by shap's custom trees")
            left[p], right[p] = pos[t][yes[i]][0], pos[t][no[i]][0]
            default[p] = left[p] if miss[i] else right[p]
            feat[p], thr[p] = feats[i], float(np.float32(vals[i]))

        # Internal node values are the cover-weighted means of their leaves: shap's
        # expected value is the sum of the roots' values.
        def fill(p):
            if left[p] < 0:
                return value[p]
            value[p] = (fill(left[p]) * cover[left[p]] + fill(right[p]) * cover[right[p]]) / cover[p]
            return value[p]

        fill(0)
        trees.append({"children_left": left, "children_right": right, "children_default": default,
                      "features": feat, "thresholds": thr, "values": value.reshape(-1, 1),
                      "node_sample_weight": cover})
    return trees


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(HERE, "fraud.onnx"))
    ap.add_argument("--covers", default=os.path.join(HERE, "covers.json"))
    ap.add_argument("--golden", default=os.path.join(HERE, "golden.jsonl"))
    ap.add_argument("--out", default=os.path.join(HERE, "shap_golden.jsonl"))
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--threshold", type=float, default=0.5, help="the alert threshold, to count alerting rows")
    args = ap.parse_args(argv)
    with open(args.covers) as f:
        covers = json.load(f)
    trees = trees_of(args.model, covers)
    rows = [json.loads(line) for line in open(args.golden)]
    X = np.asarray([r["features"] for r in rows], dtype=np.float32)
    scores = np.asarray([r["score"] for r in rows], dtype=np.float64)
    pick = [i for i in range(len(rows)) if i % args.every == 0]
    ex = shap.TreeExplainer({"trees": trees, "base_offset": 0.0, "tree_output": "raw_value",
                             "objective": "squared_error", "input_dtype": np.float32,
                             "internal_dtype": np.float64},
                            feature_perturbation="tree_path_dependent")
    phi = ex.shap_values(X[pick].astype(np.float64), check_additivity=False)
    base = float(np.asarray(ex.expected_value).reshape(-1)[0])
    pred = phi.sum(1) + base
    worst = float(np.max(np.abs(pred - scores[pick])))
    if worst > 1e-5:
        sys.exit(f"shap's contributions do not add up to ONNX Runtime's scores: {worst:.3g}")
    with open(args.out, "w", newline="\n") as f:
        for j, i in enumerate(pick):
            # json writes floats as repr does: the shortest decimal that parses back.
            f.write(json.dumps({"row": i, "score": float(pred[j]), "base_value": base,
                                "contributions": [float(v) for v in phi[j]]}) + "\n")
    alerts = int((scores[pick] >= args.threshold).sum())
    print(f"shap {shap.__version__}: {len(pick)} rows ({alerts} at or above {args.threshold}), base value "
          f"{base!r}, largest |base + sum - onnxruntime score| {worst:.3g}; wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
