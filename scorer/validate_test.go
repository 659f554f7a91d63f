package scorer

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/streamscore/streamscore/internal/onnxtest"
)

func openBytes(t *testing.T, raw []byte) *Model {
	t.Helper()
	m, err := OpenBytes(raw, Options{Name: "candidate"})
	if err != nil {
		t.Fatalf("loading the model: %v (run scripts/install-onnxruntime.sh or set %s)", err, LibraryEnv)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestOpenBytesVersionMatchesOpen: a model has the same version whether it was read from a
// file or from the registry's bytes.
func TestOpenBytesVersionMatchesOpen(t *testing.T) {
	raw, err := os.ReadFile(testModel)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := openModel(t)
	fromBytes := openBytes(t, raw)
	if fromFile.Version() != fromBytes.Version() || fromBytes.NumFeatures() != fromFile.NumFeatures() {
		t.Fatalf("from the file: %s with %d features; from bytes: %s with %d features",
			fromFile.Version(), fromFile.NumFeatures(), fromBytes.Version(), fromBytes.NumFeatures())
	}
	if fromBytes.Name() != "candidate" || fromFile.Name() != "fraud" {
		t.Fatalf("names %q and %q, want candidate and fraud", fromBytes.Name(), fromFile.Name())
	}
}

func TestOpenBytesRefusesCorruptAndEmpty(t *testing.T) {
	for name, raw := range map[string][]byte{"corrupt": onnxtest.Corrupt(), "empty": nil} {
		if m, err := OpenBytes(raw, Options{Name: name}); err == nil {
			m.Close()
			t.Errorf("%s: loaded", name)
		}
	}
}

// TestValidateAcceptsTheReferenceModel runs the shipped forest on its golden rows, and on
// synthetic rows alone.
func TestValidateAcceptsTheReferenceModel(t *testing.T) {
	m := openModel(t)
	rows := loadGolden(t)
	if err := Validate(m, len(rows[0].Features), flatten(rows)); err != nil {
		t.Fatalf("golden rows: %v", err)
	}
	if err := Validate(m, len(rows[0].Features), nil); err != nil {
		t.Fatalf("synthetic rows: %v", err)
	}
}

func TestValidateAcceptsLogistic(t *testing.T) {
	m := openBytes(t, onnxtest.Logistic(3, []float32{0.5, -1, 2}, 0.25))
	if err := Validate(m, 3, []float32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRefuses(t *testing.T) {
	const width = 5
	for _, tc := range []struct {
		name  string
		raw   []byte
		width int
		kind  error
		says  string
	}{
		{"wider spec", onnxtest.Logistic(width, make([]float32, width), 0), width + 1, ErrWidth,
			"model takes 5 inputs but the feature spec has 6: retrain on the spec's features or fix features:"},
		{"NaN", onnxtest.NaNOutput(width), width, ErrScores, "scores NaN for sample row 0"},
		{"out of range", onnxtest.OutOfRange(width), width, ErrScores, "scores must be probabilities in [0, 1]"},
		{"batch dependent", onnxtest.BatchDependent(width), width, ErrBatchDependent, "in batches of 1 but"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openBytes(t, tc.raw)
			err := Validate(m, tc.width, []float32{1, 2, 3, 4, 5})
			var ve *ValidationError
			if !errors.Is(err, tc.kind) || !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError of kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("message %q does not say %q", err, tc.says)
			}
			t.Log(err)
		})
	}
}

// TestValidateFindsBatchDependenceWithoutRows: the synthetic rows alone expose it.
func TestValidateFindsBatchDependenceWithoutRows(t *testing.T) {
	m := openBytes(t, onnxtest.BatchDependent(3))
	if err := Validate(m, 3, nil); !errors.Is(err, ErrBatchDependent) {
		t.Fatalf("got %v, want ErrBatchDependent", err)
	}
}

func TestValidateRejectsPartialRows(t *testing.T) {
	m := openBytes(t, onnxtest.Logistic(3, []float32{1, 1, 1}, 0))
	if err := Validate(m, 3, []float32{1, 2}); err == nil || !strings.Contains(err.Error(), "not whole rows") {
		t.Fatalf("got %v", err)
	}
}

func TestSyntheticRowsAreDeterministicAndFromTheSampleColumns(t *testing.T) {
	rows := []float32{1, 10, 2, 20}
	a, b := withSynthetic(rows, 2, 50), withSynthetic(rows, 2, 50)
	if len(a) != 100 {
		t.Fatalf("%d values, want 100", len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("value %d differs between calls: %v, %v", i, a[i], b[i])
		}
		if i/2%2 == 1 {
			continue // odd rows are scaled
		}
		if c := i % 2; (c == 0 && a[i] != 1 && a[i] != 2) || (c == 1 && a[i] != 10 && a[i] != 20) {
			t.Fatalf("value %d = %v is not from column %d of the sample", i, a[i], c)
		}
	}
}
