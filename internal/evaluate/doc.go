// Package evaluate judges model versions against the delayed labels: given predictions
// (event id, experiment arm, model version, score, event time, card) and labels (event id
// → 0/1) it computes, per arm, the confusion counts at the alert threshold, precision and
// recall with Wilson 95% intervals, AUC (the Mann-Whitney statistic, ties counted half),
// average precision (scikit-learn's definition), the Fraud Detection Handbook's daily card
// precision@k, and the treatment − control difference with Newcombe's interval and a plain
// verdict. It reads no topic and keeps no state: the drivers feed it what they read, so the
// report and a test's own join of the same topics can be compared (Check).
//
// Nothing here is safe for concurrent mutation; every function is pure.
package evaluate
