package models

import (
	"strings"
	"testing"
)

// TestTheReferenceTravelsWithTheVersion: a version pushed with its drift reference gives
// that reference to every instance that loads it from the registry.
func TestTheReferenceTravelsWithTheVersion(t *testing.T) {
	ctx, reg := registry(t)
	rows, width := golden(t)
	names := referenceNames(t)
	const ref = "../../testdata/model/reference.json"
	if _, err := ManifestWithReference(ref, "0badc0de", names); err == nil || !strings.Contains(err.Error(), "was built with version 203ebaf5") {
		t.Fatalf("a reference of another version: %v", err)
	}
	if _, err := ManifestWithReference(ref, "203ebaf5", names[1:]); err == nil {
		t.Fatal("a reference of another feature spec was accepted")
	}
	manifest, err := ManifestWithReference(ref, "203ebaf5", names)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := PushFile(ctx, reg, "../../testdata/model/fraud.onnx", PushOptions{Name: "fraud", Width: width, Golden: rows, Manifest: manifest})
	if err != nil {
		t.Fatal(err)
	}
	m, got, err := Load(ctx, reg, meta.Version, LiveOptions{Name: "fraud", Width: width})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got == nil || got.ModelVersion != meta.Version || len(got.Features) != width {
		t.Fatalf("loaded reference %+v, want the one of %s with %d features", got, meta.Version, width)
	}
}

// referenceNames are the feature names of the reference config.
func referenceNames(t *testing.T) []string {
	t.Helper()
	return []string{"TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT",
		"CUSTOMER_ID_NB_TX_1DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW", "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
		"CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW", "CUSTOMER_ID_NB_TX_30DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
		"TERMINAL_ID_NB_TX_1DAY_WINDOW", "TERMINAL_ID_RISK_1DAY_WINDOW", "TERMINAL_ID_NB_TX_7DAY_WINDOW",
		"TERMINAL_ID_RISK_7DAY_WINDOW", "TERMINAL_ID_NB_TX_30DAY_WINDOW", "TERMINAL_ID_RISK_30DAY_WINDOW"}
}

// TestPushBundleTakesTheFilesBesideTheModel: golden.jsonl and reference.json beside the
// model file are used by default, and "none" leaves the reference out.
func TestPushBundleTakesTheFilesBesideTheModel(t *testing.T) {
	ctx, reg := registry(t)
	_, width := golden(t)
	o := BundleOptions{PushOptions: PushOptions{Name: "fraud", Width: width}, Features: referenceNames(t)}
	meta, err := PushBundle(ctx, reg, "../../testdata/model/fraud.onnx", o)
	if err != nil {
		t.Fatal(err)
	}
	if ref, err := referenceOf(meta); err != nil || ref == nil {
		t.Fatalf("the reference beside the model did not travel: %v", err)
	}
	o.Name, o.Reference = "fraud2", "none"
	meta, err = PushBundle(ctx, reg, "../../testdata/model/fraud.onnx", o)
	if err != nil {
		t.Fatal(err)
	}
	if ref, err := referenceOf(meta); err != nil || ref != nil {
		t.Fatalf("--reference none pushed a reference (%v)", err)
	}
}
