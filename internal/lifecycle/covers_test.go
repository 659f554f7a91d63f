package lifecycle

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/streamscore/streamscore/scorer/treeshap"
)

// CoversFrom counts the rows of the model's training period with a label, and no other.
func TestCoversFromCSV(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/model/fraud.onnx")
	if err != nil {
		t.Fatal(err)
	}
	e, err := treeshap.Parse(raw, -1)
	if err != nil {
		t.Fatal(err)
	}
	names := e.FeatureNames()
	f, err := os.Open("../../testdata/model/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	b.WriteString("transaction_id,tx_datetime,customer_id,partition,offset," + strings.Join(names, ",") + ",TX_FRAUD\n")
	want := treeshap.NewCoverCounter(e)
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan() && i < 300; i++ {
		var row struct{ Features []float32 }
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		when, label := "2018-07-26T10:00:00Z", "0"
		switch i % 3 {
		case 1:
			when = "2018-08-02T10:00:00Z" // after the training period
		case 2:
			label = "" // no label known: not a training row
		}
		if when < "2018-08" && label != "" {
			if err := want.Add(row.Features); err != nil {
				t.Fatal(err)
			}
		}
		vals := make([]string, len(row.Features))
		for j, v := range row.Features {
			vals[j] = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "%d,%s,1,0,%d,%s,%s\n", i, when, i, strings.Join(vals, ","), label)
	}
	path := filepath.Join(t.TempDir(), "train.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, rep, err := CoversFrom(path, raw, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 100 || rep.Skipped != 100 || got.ModelVersion != "203ebaf5" {
		t.Fatalf("counted %d, skipped %d, version %s: want 100, 100 (the unlabelled rows are not counted), 203ebaf5", rep.Rows, rep.Skipped, got.ModelVersion)
	}
	for i, tr := range want.Covers("").Trees {
		if !slices.Equal(tr, got.Trees[i]) {
			t.Fatalf("tree %d: covers differ from counting the same rows", i)
		}
	}
	// A covers file of another version is refused when named.
	other := filepath.Join(t.TempDir(), "covers.json")
	bad, _ := json.Marshal(treeshap.Covers{ModelVersion: "0badc0de", Trees: got.Trees})
	if err := os.WriteFile(other, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := coversManifest(other, raw, BundleOptions{}); err == nil || !strings.Contains(err.Error(), "covers of version 0badc0de") {
		t.Fatalf("covers of another version: %v", err)
	}
}

// covers.json beside the model travels in the manifest, and a version loaded from the
// registry explains with them; "none" pushes none, and the version says why it cannot.
func TestPushedCoversReachTheLoadedVersion(t *testing.T) {
	ctx, reg := registry(t)
	_, width := golden(t)
	o := BundleOptions{PushOptions: PushOptions{Name: "fraud", Width: width}, Features: referenceNames(t)}
	meta, err := PushBundle(ctx, reg, "../../testdata/model/fraud.onnx", o)
	if err != nil {
		t.Fatal(err)
	}
	if !HasCovers(meta) {
		t.Fatal("covers.json beside the model did not travel")
	}
	m, _, err := Load(ctx, reg, meta.Version, LiveOptions{Name: "fraud", Width: width})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if why := m.ExplainStatus(); why != "" {
		t.Fatalf("the loaded version cannot explain: %s", why)
	}
	o.Name, o.Covers = "fraud2", "none"
	meta, err = PushBundle(ctx, reg, "../../testdata/model/fraud.onnx", o)
	if err != nil {
		t.Fatal(err)
	}
	m2, _, err := Load(ctx, reg, meta.Version, LiveOptions{Name: "fraud2", Width: width})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if HasCovers(meta) || !strings.Contains(m2.ExplainStatus(), "no node covers") {
		t.Fatalf("pushed without covers: HasCovers %v, status %q", HasCovers(meta), m2.ExplainStatus())
	}
}
