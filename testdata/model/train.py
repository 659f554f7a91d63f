#!/usr/bin/env python3
"""Train the streamscore fraud model and export it to ONNX.

Reproduce the committed artefacts (fraud.onnx, metrics.json, golden.jsonl) with:

    python3 -m venv /tmp/ssvenv && /tmp/ssvenv/bin/pip install -r testdata/model/requirements.txt
    go run ./cmd/streamscore features --days 136 --out /tmp/features.csv
    /tmp/ssvenv/bin/python testdata/model/train.py --features /tmp/features.csv \
        --customer-col customer_id --model rf --n-estimators 100 --max-depth 20

Note: the default split (train from 2018-07-25, 7+7+7 days) needs data up to
2018-08-14, i.e. 136 days from 2018-04-01 (the handbook simulates 183). With a
shorter file, pass an earlier --train-start; the script prints the time span of
the data and warns if the periods are not covered. Record the exact commands in
README.md.

The input CSV is written by `streamscore features` or `streamscore export`.
Header row, columns:

    transaction_id,tx_datetime,customer_id,partition,offset,<feature columns...>,TX_FRAUD

Rows with an empty TX_FRAUD (no label known yet) are skipped.

The feature columns are all columns strictly between `offset` and `TX_FRAUD`, in
order; their names are stored in the model (metadata_props["feature_names"]) and
must be fed to the model in that order. tx_datetime is RFC3339 (e.g.
2018-04-01T00:07:56Z). Feature values are decimal floats, TX_FRAUD is 0/1.

Split by time as in the Fraud Detection Handbook (get_train_test_set):
train on [train_start, train_start + train_days), skip `delay_days`, test on
the following `test_days`. If --customer-col names a column of the CSV, the
customers known to be compromised (frauds in the training period, plus frauds
of the delay period known by each test day) are removed from the test set and
card precision@k is reported; that column is never used as a feature.

Outputs (defaults are next to this script):
  fraud.onnx    ONNX model: input "float_input" float32 [N, n_features];
                outputs "label" int64 [N] and "probabilities" float32 [N, 2]
                (column 1 = fraud score). metadata_props: feature_names,
                trained_on (sha256 prefix of the features file), model_type, ...
  metrics.json  AUC ROC / average precision of the ONNX model (run with
                onnxruntime) on the test split, sizes, fraud rates, params,
                periods and the batch-size determinism check.
  golden.jsonl  --golden-size test rows, one JSON object per line:
                {"features":[f32,...],"score":f32}; every number is the shortest
                decimal that round-trips the float32; score is onnxruntime's
                probabilities[:,1] with all golden rows scored in ONE batch.

Batch independence (checked on every run, recorded in metrics.json): with
onnxruntime intra_op_num_threads=1, rf and tree scores are bit-identical
whatever the batch size/composition. With more intra-op threads, rf scores of
batches > 50 rows (and of single rows once n_estimators > 80) differ by up to
~1e-6 (ORT sums the trees in parallel). lr scores of a batch of 1 row differ by
~1 ulp from batches of >= 2 rows (different MLAS GEMM path), at any thread count.

Outputs are deterministic for a fixed input (rows are sorted by
(tx_datetime, partition, offset, transaction_id) so the CSV row order does not
matter), a fixed --seed and fixed package versions (requirements.txt).
"""

from __future__ import annotations

import argparse
import array
import csv
import datetime as dt
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXED_COLS = ("transaction_id", "tx_datetime", "partition", "offset")
LABEL_COL = "TX_FRAUD"
INPUT_NAME = "float_input"
PROBA_NAME = "probabilities"
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
DETERMINISM_BATCHES = (1, 7, 256)  # plus "all rows at once"


# --------------------------------------------------------------------------- io


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_day(s: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {s!r}")


def parse_ts(s: str) -> float:
    """RFC3339 -> unix seconds (UTC). Naive timestamps are taken as UTC."""
    t = dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def load_features(path, t_lo, t_hi, customer_col=None):
    """Read the rows with t_lo <= tx_datetime < t_hi.

    Returns a dict with: feature_names, X (float32 [n, f]), y (int8), ts
    (float64 unix seconds), tx_id (str), partition, offset (int64), customer
    (str or None), n_rows_total. Rows are sorted canonically.
    """
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            sys.exit(f"{path}: empty file")
        header = [h.strip() for h in header]
        pos = {}
        for i, h in enumerate(header):
            if h in pos:
                sys.exit(f"{path}: duplicate column {h!r}")
            pos[h] = i
        for c in FIXED_COLS + (LABEL_COL,):
            if c not in pos:
                sys.exit(f"{path}: missing column {c!r} (header: {','.join(header)})")
        lo, hi = pos["offset"] + 1, pos[LABEL_COL]
        if hi <= lo:
            sys.exit(f"{path}: no feature columns between 'offset' and {LABEL_COL!r}")
        cust_i = None
        if customer_col is not None:
            if customer_col not in pos:
                sys.exit(f"{path}: --customer-col {customer_col!r} not in header")
            cust_i = pos[customer_col]
        feat_idx = [i for i in range(lo, hi) if i != cust_i]
        if not feat_idx:
            sys.exit(f"{path}: no feature columns left")
        feature_names = [header[i] for i in feat_idx]
        for name in feature_names:
            if "," in name:
                sys.exit(f"{path}: feature name {name!r} contains a comma")

        i_id, i_ts, i_p, i_o, i_y = (pos[c] for c in FIXED_COLS + (LABEL_COL,))
        ncol = len(header)
        # Flat typed arrays keep memory low (~8 bytes per value) for ~1M-row files.
        feats, tss = array.array("d"), array.array("d")
        ys, parts, offs = array.array("b"), array.array("q"), array.array("q")
        ids, custs = [], []
        n_total = 0
        n_unlabelled = 0
        t_min, t_max = math.inf, -math.inf
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            n_total += 1
            if len(row) != ncol:
                sys.exit(f"{path}:{line_no}: {len(row)} fields, want {ncol}")
            try:
                t = parse_ts(row[i_ts])
            except ValueError:
                sys.exit(f"{path}:{line_no}: bad tx_datetime {row[i_ts]!r}")
            t_min, t_max = min(t_min, t), max(t_max, t)
            if not (t_lo <= t < t_hi):
                continue
            if row[i_y].strip() == "":
                n_unlabelled += 1  # `streamscore export` leaves the label empty when none is known
                continue
            try:
                fv = [float(row[i]) for i in feat_idx]
                y = float(row[i_y])
                p, o = int(row[i_p]), int(row[i_o])
            except ValueError as e:
                sys.exit(f"{path}:{line_no}: {e}")
            if y not in (0.0, 1.0):
                sys.exit(f"{path}:{line_no}: {LABEL_COL} must be 0 or 1, got {row[i_y]!r}")
            feats.extend(fv)
            parts.append(p)
            offs.append(o)
            ys.append(int(y))
            tss.append(t)
            ids.append(row[i_id])
            if cust_i is not None:
                custs.append(row[cust_i])

    n = len(ys)
    X = np.frombuffer(feats, dtype=np.float64).reshape(n, len(feature_names))
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        sys.exit(f"{path}: non-finite value in column {feature_names[bad[1]]!r}")
    X32 = X.astype(np.float32)
    if not np.all(np.isfinite(X32)):
        sys.exit(f"{path}: value overflows float32")
    ts = np.frombuffer(tss, dtype=np.float64).copy()
    part = np.frombuffer(parts, dtype=np.int64).copy()
    off = np.frombuffer(offs, dtype=np.int64).copy()
    tx_id = np.asarray(ids, dtype=str) if n else np.zeros(0, dtype="<U1")
    # Canonical order, so that the CSV row order (e.g. Kafka partition
    # interleaving) cannot change the model.
    order = np.lexsort((tx_id, off, part, ts)) if n else np.zeros(0, dtype=np.int64)
    out = dict(
        feature_names=feature_names,
        X=X32[order],
        y=np.frombuffer(ys, dtype=np.int8)[order],
        ts=ts[order],
        tx_id=tx_id[order],
        partition=part[order],
        offset=off[order],
        customer=(np.asarray(custs, dtype=str)[order] if cust_i is not None and n else None),
        n_rows_total=n_total,
        n_unlabelled=n_unlabelled,
        t_min=t_min,
        t_max=t_max,
    )
    if cust_i is not None and out["customer"] is None:
        out["customer"] = np.zeros(0, dtype="<U1")
    return out


# ------------------------------------------------------------------------ model


def make_model(kind: str, seed: int, args):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if kind == "rf":
        return RandomForestClassifier(
            n_estimators=args.n_estimators,
            max_depth=args.max_depth if args.max_depth > 0 else None,
            min_samples_leaf=args.min_samples_leaf,
            random_state=seed,
            n_jobs=1,
        )
    if kind == "tree":
        return DecisionTreeClassifier(
            max_depth=args.max_depth if args.max_depth > 0 else None,
            min_samples_leaf=args.min_samples_leaf,
            random_state=seed,
        )
    if kind == "lr":
        return Pipeline(
            [
                ("scaler", StandardScaler()),
                ("clf", LogisticRegression(C=1.0, max_iter=1000, random_state=seed)),
            ]
        )
    raise ValueError(kind)


def final_estimator(model):
    from sklearn.pipeline import Pipeline

    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def tree_covers(model, X):
    """Node covers for reason codes (TreeSHAP): how many training rows reached each node
    of each tree, in skl2onnx's node order (the sklearn node id), as the JSON that
    streamscore reads from metadata_props["tree_covers"] (scorer/treeshap.Covers). None
    for a model that is not made of trees."""
    est = final_estimator(model)
    trees = getattr(est, "estimators_", None)
    if trees is None:
        trees = [est] if hasattr(est, "tree_") else None
    if trees is None:
        return None
    X = np.asarray(X, dtype=np.float32)
    counts = [np.asarray(t.decision_path(X).sum(axis=0)).ravel().astype(np.int64).tolist() for t in trees]
    return json.dumps({"rows": int(len(X)), "trees": counts}, separators=(",", ":"))


def jsonable_params(model):
    from sklearn.pipeline import Pipeline

    def clean(d):
        out = {}
        for k, v in sorted(d.items()):
            if v is None or isinstance(v, (bool, int, float, str)):
                out[k] = v
            elif isinstance(v, (np.integer, np.floating)):
                out[k] = v.item()
            else:
                out[k] = repr(v)
        return out

    if isinstance(model, Pipeline):
        return {name: {"class": type(est).__name__, **clean(est.get_params(deep=False))}
                for name, est in model.steps}
    return {"class": type(model).__name__, **clean(model.get_params(deep=False))}


def to_onnx_model(model, n_features, metadata):
    import onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        name="streamscore_fraud",
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        options={id(final_estimator(model)): {"zipmap": False}},
        target_opset=dict(TARGET_OPSET),
    )
    outs = [o.name for o in onx.graph.output]
    if PROBA_NAME not in outs:
        sys.exit(f"unexpected ONNX outputs {outs}, want {PROBA_NAME!r}")
    # skl2onnx 1.20 lists the default domain twice in opset_import; keep one entry
    # per domain (the highest version).
    opsets = {}
    for o in onx.opset_import:
        opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    del onx.opset_import[:]
    for domain, version in sorted(opsets.items()):
        onx.opset_import.add(domain=domain, version=version)
    del onx.metadata_props[:]
    for k, v in metadata.items():
        p = onx.metadata_props.add()
        p.key, p.value = k, str(v)
    onx.doc_string = "streamscore fraud model; score = probabilities[:, 1]"
    onnx.checker.check_model(onx)
    return onx


def ort_session(model_bytes, threads=1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def ort_scores(sess, X, batch=None):
    """probabilities[:, 1] as float32, scoring in batches of `batch` rows."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    batch = n if batch is None else batch
    parts = []
    for i in range(0, n, batch):
        (p,) = sess.run([PROBA_NAME], {INPUT_NAME: X[i : i + batch]})
        p = np.asarray(p)
        if p.dtype != np.float32 or p.ndim != 2 or p.shape[1] != 2:
            sys.exit(f"unexpected {PROBA_NAME} output {p.dtype} {p.shape}")
        parts.append(p[:, 1].copy())
    return np.concatenate(parts)


# ---------------------------------------------------------------------- metrics


def card_precision_top_k(day, customer, y, score, k):
    """Handbook card_precision_top_k (cards already detected are removed on later days)."""
    detected = set()
    per_day = []
    for d in np.unique(day):
        m = day == d
        best = {}  # customer -> (max score, max fraud)
        for c, yy, s in zip(customer[m], y[m], score[m]):
            if c in detected:
                continue
            prev = best.get(c)
            best[c] = (s, yy) if prev is None else (max(prev[0], s), max(prev[1], yy))
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
        hits = [c for c, (_, yy) in ranked if yy == 1]
        per_day.append(len(hits) / k)
        detected.update(hits)
    return float(np.mean(per_day)) if per_day else None


def f32_str(x) -> str:
    """Shortest decimal that round-trips the float32 value (valid JSON number)."""
    v = np.float32(x)
    if not np.isfinite(v):
        raise ValueError(f"non-finite value {v}")
    s = np.format_float_positional(v, unique=True, trim="-")
    # Checks both parsing paths a reader may use: float64 then float32 and
    # direct float32.
    if np.float32(float(s)) != v or np.float32(s) != v:
        raise AssertionError(f"{s!r} does not round-trip float32 {v!r}")
    return s


# ------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Train the streamscore fraud model on a `streamscore features` CSV, "
        "export it to ONNX and write metrics.json and golden.jsonl.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--features", required=True, help="CSV written by `streamscore features`")
    ap.add_argument("--train-start", type=parse_day, default="2018-07-25",
                    help="first training day (UTC, YYYY-MM-DD)")
    ap.add_argument("--train-days", type=int, default=7, help="length of the training period")
    ap.add_argument("--delay-days", type=int, default=7,
                    help="gap between training and test periods (feedback delay)")
    ap.add_argument("--test-days", type=int, default=7, help="length of the test period")
    ap.add_argument("--model", choices=("rf", "lr", "tree"), default="rf",
                    help="rf: RandomForest; lr: StandardScaler+LogisticRegression; tree: DecisionTree")
    ap.add_argument("--n-estimators", type=int, default=50, help="rf: number of trees")
    ap.add_argument("--max-depth", type=int, default=8, help="rf/tree: max depth (0 = unlimited)")
    ap.add_argument("--min-samples-leaf", type=int, default=1, help="rf/tree: min samples per leaf")
    ap.add_argument("--seed", type=int, default=0, help="random_state and golden sampling seed")
    ap.add_argument("--customer-col", default=None,
                    help="optional customer id column: enables handbook removal of known "
                    "compromised customers from the test set and card precision@k")
    ap.add_argument("--top-k", type=int, default=100, help="k for card precision@k")
    ap.add_argument("--golden-size", type=int, default=2000, help="rows in golden.jsonl")
    ap.add_argument("--no-covers", action="store_true",
                    help="do not write the node covers (metadata_props tree_covers) that reason codes "
                         "need; the committed fraud.onnx predates them (its covers are covers.json)")
    ap.add_argument("--out", default=os.path.join(HERE, "fraud.onnx"), help="ONNX model path")
    ap.add_argument("--metrics-out", default=os.path.join(HERE, "metrics.json"),
                    help="metrics JSON path")
    ap.add_argument("--golden-out", default=os.path.join(HERE, "golden.jsonl"),
                    help="golden rows/scores (JSON lines) path")
    args = ap.parse_args(argv)
    if isinstance(args.train_start, str):  # default value is not passed through type=
        args.train_start = parse_day(args.train_start)
    for name in ("train_days", "test_days"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be > 0")
    if args.delay_days < 0:
        ap.error("--delay-days must be >= 0")

    import onnx
    import onnxruntime
    import sklearn
    import skl2onnx
    from sklearn.metrics import average_precision_score, roc_auc_score

    t0 = time.perf_counter()
    day = dt.timedelta(days=1)
    train_lo = args.train_start
    train_hi = train_lo + args.train_days * day
    test_lo = train_hi + args.delay_days * day
    test_hi = test_lo + args.test_days * day
    periods = {
        "train": [train_lo.isoformat(), train_hi.isoformat()],
        "delay": [train_hi.isoformat(), test_lo.isoformat()],
        "test": [test_lo.isoformat(), test_hi.isoformat()],
        "train_days": args.train_days,
        "delay_days": args.delay_days,
        "test_days": args.test_days,
        "intervals": "half-open [start, end), UTC",
    }

    sha = sha256_file(args.features)
    data = load_features(args.features, train_lo.timestamp(), test_hi.timestamp(), args.customer_col)
    t_load = time.perf_counter() - t0
    names = data["feature_names"]
    ts = data["ts"]
    dayno = np.floor((ts - train_lo.timestamp()) / 86400.0).astype(np.int64)
    tr = dayno < args.train_days
    te = dayno >= args.train_days + args.delay_days
    removed_known = 0
    if data["customer"] is not None:
        # Handbook get_train_test_set: for test day i, drop customers with a fraud in
        # the training period or in delay-period days up to (train end + i - 1).
        cust = data["customer"]
        y = data["y"]
        known = set(cust[tr & (y == 1)])
        keep = np.zeros(len(ts), dtype=bool)
        for i in range(args.test_days):
            dd = args.train_days + i - 1
            known.update(cust[(dayno == dd) & (y == 1)])
            m = dayno == args.train_days + args.delay_days + i
            ok = m & ~np.isin(cust, list(known))
            keep |= ok
            removed_known += int(m.sum() - ok.sum())
        te &= keep

    Xtr, ytr = data["X"][tr], data["y"][tr]
    Xte, yte = data["X"][te], data["y"][te]
    print(f"features file: {args.features} (sha256 {sha[:16]}, {data['n_rows_total']} rows)")
    if data["n_rows_total"]:
        utc = lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()
        print(f"data spans {utc(data['t_min'])} .. {utc(data['t_max'])}")
        if data["t_min"] > train_lo.timestamp() or data["t_max"] < test_hi.timestamp() - 86400:
            print(f"WARNING: data does not cover {periods['train'][0]} .. {periods['test'][1]}; "
                  "adjust --train-start or generate more days", file=sys.stderr)
    print(f"feature columns ({len(names)}): {','.join(names)}")
    print(f"train {periods['train'][0]} .. {periods['train'][1]}: {len(ytr)} rows, "
          f"fraud rate {ytr.mean() if len(ytr) else float('nan'):.5f}")
    print(f"test  {periods['test'][0]} .. {periods['test'][1]}: {len(yte)} rows, "
          f"fraud rate {yte.mean() if len(yte) else float('nan'):.5f}"
          + (f" ({removed_known} rows of known compromised customers removed)"
             if data["customer"] is not None else ""))
    if len(ytr) == 0 or len(np.unique(ytr)) < 2:
        sys.exit("training set is empty or has a single class; check --train-start and the CSV")
    if len(yte) == 0:
        sys.exit("test set is empty; check --train-start/--delay-days/--test-days and the CSV")

    model = make_model(args.model, args.seed, args)
    t1 = time.perf_counter()
    model.fit(Xtr, ytr)
    t_fit = time.perf_counter() - t1

    metadata = {
        "feature_names": ",".join(names),
        "trained_on": sha[:16],
        "model_type": args.model,
        "score_output": f"{PROBA_NAME}[:,1]",
        "train_period": "/".join(periods["train"]),
        "test_period": "/".join(periods["test"]),
        "seed": str(args.seed),
        "versions": f"sklearn={sklearn.__version__},skl2onnx={skl2onnx.__version__},"
                    f"onnx={onnx.__version__}",
    }
    if not args.no_covers:
        covers = tree_covers(model, Xtr)
        if covers is not None:
            metadata["tree_covers"] = covers
    onx = to_onnx_model(model, len(names), metadata)
    model_bytes = onx.SerializeToString()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(model_bytes)

    # Evaluate the ONNX model (not sklearn) on the test split.
    sess = ort_session(model_bytes, threads=1)
    t2 = time.perf_counter()
    s_te = ort_scores(sess, Xte)
    t_score = time.perf_counter() - t2
    two = len(np.unique(yte)) == 2
    auc = float(roc_auc_score(yte, s_te)) if two else None
    ap_ = float(average_precision_score(yte, s_te)) if two else None
    cp = None
    if data["customer"] is not None:
        cp = card_precision_top_k(dayno[te], data["customer"][te], yte, s_te, args.top_k)
    sk_diff = float(np.max(np.abs(model.predict_proba(Xte)[:, 1] - s_te.astype(np.float64))))

    # Golden rows: deterministic sample of the test split, all frauds up to half.
    rng = np.random.default_rng(args.seed)
    n_gold = min(args.golden_size, len(yte))
    fr = np.flatnonzero(yte == 1)
    nf = np.flatnonzero(yte == 0)
    n_fr = min(len(fr), n_gold // 2)
    n_nf = min(len(nf), n_gold - n_fr)
    n_fr = min(len(fr), n_gold - n_nf)
    gold_idx = np.sort(np.concatenate([
        rng.choice(fr, n_fr, replace=False) if n_fr else fr[:0],
        rng.choice(nf, n_nf, replace=False) if n_nf else nf[:0],
    ]))
    Xg = np.ascontiguousarray(Xte[gold_idx])
    s_gold = ort_scores(sess, Xg)  # ONE batch of all golden rows
    with open(args.golden_out, "w", newline="\n") as f:
        for row, s in zip(Xg, s_gold):
            f.write('{"features":[' + ",".join(f32_str(v) for v in row)
                    + '],"score":' + f32_str(s) + "}\n")

    # Batch-composition determinism: same rows, batches of 1/7/256/all, 1 thread.
    det = {}
    for b in DETERMINISM_BATCHES:
        s_b = ort_scores(sess, Xg, batch=b)
        det[str(b)] = {"bit_identical": bool(np.array_equal(s_b.view(np.uint32), s_gold.view(np.uint32))),
                       "max_abs_diff": float(np.max(np.abs(s_b - s_gold))) if len(s_b) else 0.0}
    # Same rows inside the full test batch (different batch composition).
    s_in_full = s_te[gold_idx]
    det["full_test_split"] = {
        "bit_identical": bool(np.array_equal(s_in_full.view(np.uint32), s_gold.view(np.uint32))),
        "max_abs_diff": float(np.max(np.abs(s_in_full - s_gold))) if len(s_gold) else 0.0}
    # Informational: default intra-op thread pool (all cores), batch of all vs 1.
    sess_mt = ort_session(model_bytes, threads=None)
    s_mt_all = ort_scores(sess_mt, Xte)
    s_mt_1 = ort_scores(sess_mt, Xg, batch=1)
    det_mt = {
        "full_test_split_vs_1thread": bool(np.array_equal(s_mt_all.view(np.uint32), s_te.view(np.uint32))),
        "batch_1_vs_1thread": bool(np.array_equal(s_mt_1.view(np.uint32), s_gold.view(np.uint32))),
    }
    all_ok = all(v["bit_identical"] for v in det.values())

    metrics = {
        "model_type": args.model,
        "model_params": jsonable_params(model),
        "feature_names": names,
        "features_file_sha256": sha,
        "periods": periods,
        "n_rows_in_file": data["n_rows_total"],
        "n_train": int(len(ytr)),
        "n_test": int(len(yte)),
        "n_test_removed_known_compromised": removed_known if data["customer"] is not None else None,
        "n_fraud_train": int(ytr.sum()),
        "n_fraud_test": int(yte.sum()),
        "fraud_rate_train": float(ytr.mean()),
        "fraud_rate_test": float(yte.mean()),
        "auc_roc": auc,
        "average_precision": ap_,
        "card_precision_at_k": cp,
        "top_k": args.top_k if cp is not None else None,
        "evaluated_with": f"onnxruntime {onnxruntime.__version__} (CPU, intra_op_num_threads=1)",
        "max_abs_diff_onnx_vs_sklearn": sk_diff,
        "golden": {"file": os.path.basename(args.golden_out), "rows": int(len(gold_idx)),
                   "frauds": int(yte[gold_idx].sum()), "seed": args.seed},
        "batch_determinism_1thread": det,
        "batch_determinism_default_threads": det_mt,
        "onnx": {"input": INPUT_NAME, "output": PROBA_NAME, "opset": TARGET_OPSET,
                 "metadata_props": {k: v for k, v in metadata.items() if k != "tree_covers"}},
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__,
                     "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
    with open(args.metrics_out, "w", newline="\n") as f:
        json.dump(metrics, f, indent=2, sort_keys=False)
        f.write("\n")

    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    print(f"model {args.model}: {json.dumps(metrics['model_params'], sort_keys=True)}")
    print(f"AUC ROC {fmt(auc)}  average precision {fmt(ap_)}"
          + (f"  card precision@{args.top_k} {fmt(cp)}" if cp is not None else
             "  (card precision@k: needs --customer-col)"))
    print(f"max |onnx - sklearn| on test: {sk_diff:.3g}")
    print("batch-size determinism (intra_op_num_threads=1, golden rows vs one batch): "
          + ", ".join(f"{k}={'identical' if v['bit_identical'] else 'DIFFERENT (max %.3g)' % v['max_abs_diff']}"
                      for k, v in det.items()))
    print(f"  default thread pool: full split identical={det_mt['full_test_split_vs_1thread']}, "
          f"batch 1 identical={det_mt['batch_1_vs_1thread']}")
    if not all_ok:
        print(f"WARNING: {args.model} scores depend on batch composition", file=sys.stderr)
    print(f"wrote {args.out} ({len(model_bytes)} bytes), {args.metrics_out}, "
          f"{args.golden_out} ({len(gold_idx)} rows, {int(yte[gold_idx].sum())} frauds)")
    print(f"time: load {t_load:.1f}s, fit {t_fit:.1f}s, onnx score test {t_score:.2f}s, "
          f"total {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
