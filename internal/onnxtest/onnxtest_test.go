package onnxtest_test

import (
	"math"
	"testing"

	"github.com/streamscore/streamscore/internal/onnxtest"
	"github.com/streamscore/streamscore/scorer"
)

const width = 4

// rows are three non-negative rows of width features, row-major.
var rows = []float32{
	0, 0, 0, 0,
	1, 2, 3, 4,
	0.5, 0.25, 0, 2,
}

func open(t *testing.T, raw []byte) *scorer.Model {
	t.Helper()
	m, err := scorer.OpenBytes(raw, scorer.Options{Name: "test"})
	if err != nil {
		t.Fatalf("loading the model in ONNX Runtime: %v (run scripts/install-onnxruntime.sh or set %s)", err, scorer.LibraryEnv)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	if m.NumFeatures() != width {
		t.Fatalf("model takes %d features, want %d", m.NumFeatures(), width)
	}
	return m
}

func score(t *testing.T, m *scorer.Model, x []float32) []float32 {
	t.Helper()
	n := len(x) / width
	out := make([]float32, n)
	if _, err := m.Score(x, n, out, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func TestLogisticScoresSigmoidOfLinear(t *testing.T) {
	w := []float32{0.5, -0.25, 0.125, 1}
	const b = -1
	m := open(t, onnxtest.Logistic(width, w, b))
	got := score(t, m, rows)
	for i, s := range got {
		z := float64(b)
		for j := 0; j < width; j++ {
			z += float64(w[j]) * float64(rows[i*width+j])
		}
		if d := math.Abs(float64(s) - sigmoid(z)); d > 1e-6 {
			t.Errorf("row %d: score %v, want sigmoid(%v) = %v", i, s, z, sigmoid(z))
		}
	}
}

func TestNaNOutputScoresNaN(t *testing.T) {
	for i, s := range score(t, open(t, onnxtest.NaNOutput(width)), rows) {
		if !math.IsNaN(float64(s)) {
			t.Errorf("row %d: score %v, want NaN", i, s)
		}
	}
}

func TestOutOfRangeScoresAboveOne(t *testing.T) {
	for i, s := range score(t, open(t, onnxtest.OutOfRange(width)), rows) {
		if s < 1.5 {
			t.Errorf("row %d: score %v, want at least 1.5", i, s)
		}
	}
}

func TestBatchDependentScoresDependOnTheBatch(t *testing.T) {
	m := open(t, onnxtest.BatchDependent(width))
	alone := score(t, m, rows[width:2*width])
	together := score(t, m, rows)
	if alone[0] != 0.5 {
		t.Errorf("row scored alone: %v, want 0.5 (its own mean)", alone[0])
	}
	if together[1] == alone[0] {
		t.Errorf("row 1 scores %v alone and in a batch of 3: the model does not depend on the batch", alone[0])
	}
}

func TestPaddedIsLargeAndScoresLikeLogistic(t *testing.T) {
	const extra = 3 << 20
	raw := onnxtest.Padded(width, extra)
	if len(raw) <= extra {
		t.Fatalf("padded model has %d bytes, want more than %d", len(raw), extra)
	}
	got := score(t, open(t, raw), rows)
	want := score(t, open(t, onnxtest.Logistic(width, []float32{0.1, 0.1, 0.1, 0.1}, -1)), rows)
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("row %d: padded scores %v, the same logistic model %v", i, got[i], want[i])
		}
	}
}

func TestCorruptDoesNotLoad(t *testing.T) {
	m, err := scorer.OpenBytes(onnxtest.Corrupt(), scorer.Options{Name: "corrupt"})
	if err == nil {
		m.Close()
		t.Fatal("ONNX Runtime loaded the corrupt model")
	}
	t.Logf("refused as expected: %v", err)
}

// TestModelsAreDeterministic pins that the same call gives the same bytes, so that a test
// model's version (its SHA-256 prefix) is stable.
func TestModelsAreDeterministic(t *testing.T) {
	a, b := onnxtest.Padded(width, 1000), onnxtest.Padded(width, 1000)
	if string(a) != string(b) {
		t.Fatal("two Padded models with the same arguments differ")
	}
}
