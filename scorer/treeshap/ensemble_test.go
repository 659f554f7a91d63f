package treeshap

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
)

type goldenRow struct {
	Features []float32 `json:"features"`
	Score    float32   `json:"score"`
}

func readGolden(t testing.TB) []goldenRow {
	t.Helper()
	f, err := os.Open("../../testdata/model/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []goldenRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r goldenRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func shippedForest(t testing.TB) *Ensemble {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/model/fraud.onnx")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(raw, 1)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The parser's proof: the trees as read reproduce ONNX Runtime's scores of golden.jsonl.
func TestPredictMatchesONNXRuntime(t *testing.T) {
	e := shippedForest(t)
	if e.NumTrees() != 50 || e.NumFeatures() != 15 || len(e.FeatureNames()) != 15 {
		t.Fatalf("trees %d, features %d, names %v", e.NumTrees(), e.NumFeatures(), e.FeatureNames())
	}
	worst := 0.0
	for i, r := range readGolden(t) {
		d := math.Abs(e.Predict(r.Features) - float64(r.Score))
		worst = max(worst, d)
		if d > 1e-6 {
			t.Fatalf("row %d: trees give %v, ONNX Runtime %v", i, e.Predict(r.Features), r.Score)
		}
	}
	t.Logf("largest difference from ONNX Runtime: %.3g", worst)
}

// Local accuracy and determinism on other covers: counted from the golden rows themselves.
func TestExplainLocalAccuracy(t *testing.T) {
	e := shippedForest(t)
	if _, err := e.Explain(make([]float32, 15), make([]float64, 15)); !errors.Is(err, ErrNoCovers) {
		t.Fatalf("Explain without covers: %v, want ErrNoCovers", err)
	}
	all := readGolden(t)
	cc := NewCoverCounter(e)
	var rows []goldenRow
	for i, r := range all {
		if err := cc.Add(r.Features); err != nil {
			t.Fatal(err)
		}
		if i%40 == 0 {
			rows = append(rows, r)
		}
	}
	if err := e.SetCovers(cc.Covers("")); err != nil {
		t.Fatal(err)
	}
	phi, again := make([]float64, 15), make([]float64, 15)
	for i, r := range rows {
		base, err := e.Explain(r.Features, phi)
		if err != nil {
			t.Fatal(err)
		}
		sum := base
		for _, p := range phi {
			sum += p
		}
		if d := math.Abs(sum - e.Predict(r.Features)); d > 1e-9 {
			t.Fatalf("row %d: base %v + contributions = %v, score %v", i, base, sum, e.Predict(r.Features))
		}
		if _, err := e.Explain(r.Features, again); err != nil {
			t.Fatal(err)
		}
		for j := range phi {
			if math.Float64bits(phi[j]) != math.Float64bits(again[j]) {
				t.Fatalf("row %d feature %d: %v then %v", i, j, phi[j], again[j])
			}
		}
	}
}

// BenchmarkExplain is the cost of one explained row: the shipped forest (50 trees, depth
// up to 16, 11,402 leaves) on the golden rows, with its training covers.
func BenchmarkExplain(b *testing.B) {
	e := shippedForestWithCovers(b)
	rows := readGolden(b)
	phi := make([]float64, 15)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.Explain(rows[i%len(rows)].Features, phi); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(i), "µs/row")
}
