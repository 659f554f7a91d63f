#!/usr/bin/env python3
"""Reference values for internal/evaluate's tests, computed by scikit-learn and by
testdata/model/train.py's card_precision_top_k on a small fixed example with tied scores.

    /tmp/ssvenv/bin/python internal/evaluate/testdata/sklearn_values.py > internal/evaluate/testdata/sklearn_values.json
"""
import json
import os
import sys

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "testdata", "model"))
from train import card_precision_top_k  # noqa: E402

rng = np.random.default_rng(24)
n = 60
# Scores on a coarse grid, so that many are tied (within and across classes).
score = np.round(rng.random(n) * 10) / 10
y = (rng.random(n) < 0.15 + 0.6 * score).astype(int)
day = rng.integers(0, 4, n)
card = np.array([str(c) for c in rng.integers(0, 12, n)])
k = 3
out = {
    "rows": [{"day": int(d), "card": c, "score": float(s), "fraud": int(v)}
             for d, c, s, v in zip(day, card, score, y)],
    "k": k,
    "auc": float(roc_auc_score(y, score)),
    "average_precision": float(average_precision_score(y, score)),
    "card_precision_at_k": card_precision_top_k(day, card, y, score, k),
}
json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
