package treeshap

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/streamscore/streamscore/internal/testenv"
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
// rows included. Under -race, where each Explain costs several times as much, it checks
// every alerting row and every fifth of the others (80 of 250 rows); all rows otherwise.
func TestMatchesShap(t *testing.T) {
	every := 1
	if testenv.Race {
		every = 5
	}
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
	rows, alerts, checked, worst := 0, 0, 0, 0.0
	for sc.Scan() {
		var want shapRow
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		rows++
		alerting := golden[want.Row].Score >= 0.5
		if alerting {
			alerts++
		}
		if !alerting && (rows-1)%every != 0 {
			continue
		}
		checked++
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
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows < 200 || alerts < 20 {
		t.Fatalf("%d rows (%d alerting) in shap_golden.jsonl: want at least 200 and alerting ones", rows, alerts)
	}
	t.Logf("%d rows (%d alerting), %d checked: largest difference from shap %.3g", rows, alerts, checked, worst)
}
