package treeshap

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"testing"
)

type shapRow struct {
	Row           int       `json:"row"`
	BaseValue     float64   `json:"base_value"`
	Contributions []float64 `json:"contributions"`
}

// shippedForestWithCovers is the shipped forest with the covers counted from its training
// rows (testdata/model/covers.json, `streamscore model covers`).
func shippedForestWithCovers(t testing.TB) *Ensemble {
	t.Helper()
	e := shippedForest(t)
	raw, err := os.ReadFile("../../testdata/model/covers.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCovers(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetCovers(c); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestMatchesShap checks every contribution against the shap package's TreeExplainer on
// the same trees and covers (testdata/model/shap_golden.py wrote the file), alerting
// rows included.
func TestMatchesShap(t *testing.T) {
	e := shippedForestWithCovers(t)
	golden := readGolden(t)
	f, err := os.Open("../../testdata/model/shap_golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	phi := make([]float64, e.NumFeatures())
	rows, alerts, worst := 0, 0, 0.0
	for sc.Scan() {
		var want shapRow
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		x := golden[want.Row].Features
		base, err := e.Explain(x, phi)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(base - want.BaseValue); d > 1e-9 {
			t.Fatalf("base value %v, shap's %v", base, want.BaseValue)
		}
		if len(want.Contributions) != len(phi) {
			t.Fatalf("row %d: shap has %d contributions, we %d", want.Row, len(want.Contributions), len(phi))
		}
		for j, w := range want.Contributions {
			d := math.Abs(phi[j] - w)
			worst = max(worst, d)
			if d > 1e-5 {
				t.Errorf("golden row %d, feature %d: contribution %v, shap's %v", want.Row, j, phi[j], w)
			}
		}
		rows++
		if golden[want.Row].Score >= 0.5 {
			alerts++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows < 200 || alerts < 20 {
		t.Fatalf("%d rows (%d alerting) in shap_golden.jsonl: want at least 200 and alerting ones", rows, alerts)
	}
	t.Logf("%d rows (%d alerting): largest difference from shap %.3g", rows, alerts, worst)
}
