package lifecycle

import (
	"os"
	"path/filepath"
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

// TestPushBundleRefusesABadGoldenFile: --golden naming a missing file, or a golden file of
// another width or shape, refuses the push with the file's name instead of validating on
// synthetic rows; nothing is stored.
func TestPushBundleRefusesABadGoldenFile(t *testing.T) {
	ctx, reg := registry(t)
	_, width := golden(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	narrow := write("narrow.jsonl", `{"features":[1,2,3],"score":0.5}`+"\n")
	garbled := write("garbled.jsonl", "\n{\"features\":[1,2\n")
	empty := write("empty.jsonl", "\n\n")
	for _, tc := range []struct{ golden, want string }{
		{filepath.Join(dir, "typo.jsonl"), "typo.jsonl: open"},
		{narrow, "narrow.jsonl line 1: 3 features, but the feature spec has 15"},
		{garbled, "garbled.jsonl line 2"},
		{empty, "empty.jsonl: no rows"},
	} {
		o := BundleOptions{PushOptions: PushOptions{Name: "fraud", Width: width}, Features: referenceNames(t), Golden: tc.golden}
		_, err := PushBundle(ctx, reg, "../../testdata/model/fraud.onnx", o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was stored") {
			t.Errorf("--golden %s: %v, want an error containing %q", filepath.Base(tc.golden), err, tc.want)
		}
	}
	if vs, err := List(ctx, reg); err != nil || len(vs) != 0 {
		t.Fatalf("refused pushes stored versions: %v (%v)", vs, err)
	}
	// a model directory without golden.jsonl still pushes, on synthetic rows
	model, err := os.ReadFile("../../testdata/model/fraud.onnx")
	if err != nil {
		t.Fatal(err)
	}
	o := BundleOptions{PushOptions: PushOptions{Name: "fraud", Width: width}, Reference: "none"}
	if _, err := PushBundle(ctx, reg, write("fraud.onnx", string(model)), o); err != nil {
		t.Fatalf("a model without golden.jsonl beside it: %v", err)
	}
}
