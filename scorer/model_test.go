package scorer

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

const testModel = "../testdata/model/fraud.onnx"

type goldenRow struct {
	Features []float32 `json:"features"`
	Score    float32   `json:"score"`
}

func loadGolden(t testing.TB) []goldenRow {
	t.Helper()
	f, err := os.Open("../testdata/model/golden.jsonl")
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
	if len(rows) < 100 {
		t.Fatalf("golden file has %d rows", len(rows))
	}
	return rows
}

// openModel opens the reference model on the real ONNX Runtime library. A missing library
// fails the test: `make test` installs it, and no test may pass without it.
func openModel(t testing.TB) *Model {
	t.Helper()
	m, err := Open(Options{Path: testModel})
	if err != nil {
		t.Fatalf("opening %s: %v (run scripts/install-onnxruntime.sh or set %s)", testModel, err, LibraryEnv)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func flatten(rows []goldenRow) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r.Features...)
	}
	return out
}

// TestGoldenScores compares Go's ONNX Runtime scores with the ones the training script got
// from Python's ONNX Runtime for the same rows.
func TestGoldenScores(t *testing.T) {
	m := openModel(t)
	rows := loadGolden(t)
	if m.NumFeatures() != len(rows[0].Features) {
		t.Fatalf("model takes %d features, golden rows have %d", m.NumFeatures(), len(rows[0].Features))
	}
	out := make([]float32, len(rows))
	if _, err := m.Score(flatten(rows), len(rows), out, nil); err != nil {
		t.Fatal(err)
	}
	exact := 0
	for i, r := range rows {
		if d := math.Abs(float64(out[i] - r.Score)); d > 1e-6 {
			t.Fatalf("row %d %v: score %v, golden %v (diff %g)", i, r.Features, out[i], r.Score, d)
		}
		if out[i] == r.Score {
			exact++
		}
	}
	t.Logf("%d/%d golden scores bit-identical, all within 1e-6", exact, len(rows))
}

// TestScoresIndependentOfBatching is the determinism contract behind live == backfill:
// each row's score is bit-identical whatever batch it is scored in.
func TestScoresIndependentOfBatching(t *testing.T) {
	m := openModel(t)
	rows := loadGolden(t)
	all := flatten(rows)
	f := m.NumFeatures()
	ref := make([]float32, len(rows))
	if _, err := m.Score(all, len(rows), ref, nil); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(rows))
	var scratch []float32
	for _, size := range []int{1, 2, 3, 7, 64, 255, 256, 1000, 1024} {
		for start := 0; start < len(rows); start += size {
			n := min(size, len(rows)-start)
			var err error
			scratch, err = m.Score(all[start*f:(start+n)*f], n, out[start:], scratch)
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range rows {
			if math.Float32bits(out[i]) != math.Float32bits(ref[i]) {
				t.Fatalf("batch size %d: row %d scored %v, in one batch %v", size, i, out[i], ref[i])
			}
		}
	}
}

func TestOpenErrors(t *testing.T) {
	openModel(t) // the runtime is loaded
	if _, err := Open(Options{Path: filepath.Join(t.TempDir(), "missing.onnx")}); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: bad}); err == nil {
		t.Error("Open of a corrupt model succeeded")
	}
	if _, err := Open(Options{Path: testModel, Device: "tpu"}); err == nil {
		t.Error("device tpu accepted")
	}
	if _, err := Open(Options{Path: testModel, OutputName: "nope"}); err == nil {
		t.Error("unknown output accepted")
	}
	m := openModel(t)
	if _, err := m.Score(make([]float32, 2), 1, make([]float32, 1), nil); err == nil {
		t.Error("short feature slice accepted")
	}
}

// TestCUDAUnavailableIsAClearError: the CPU build of ONNX Runtime has no CUDA provider;
// asking for it must fail at start with ErrNoCUDA, not crash or silently use the CPU.
func TestCUDAUnavailableIsAClearError(t *testing.T) {
	if os.Getenv("STREAMSCORE_TEST_CUDA") != "" {
		m, err := Open(Options{Path: testModel, Device: CUDA})
		if err != nil {
			t.Fatalf("CUDA requested by STREAMSCORE_TEST_CUDA: %v", err)
		}
		m.Close()
		return
	}
	openModel(t)
	_, err := Open(Options{Path: testModel, Device: CUDA})
	if err == nil {
		t.Skip("this ONNX Runtime build has a working CUDA provider; set STREAMSCORE_TEST_CUDA=1 to test it")
	}
	if !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("Open(cuda) = %v, want ErrNoCUDA", err)
	}
	t.Logf("clear error: %v", err)
}

func TestModelMetadata(t *testing.T) {
	m := openModel(t)
	if m.Name() != "fraud" || len(m.Version()) != 8 || m.Device() != CPU {
		t.Fatalf("name %q version %q device %q", m.Name(), m.Version(), m.Device())
	}
}

func BenchmarkScore(b *testing.B) {
	m := openModel(b)
	rows := loadGolden(b)
	for _, n := range []int{1, 16, 256, 1024, 4096} {
		feat := make([]float32, n*m.NumFeatures())
		for i := 0; i < n; i++ {
			copy(feat[i*m.NumFeatures():], rows[i%len(rows)].Features)
		}
		out := make([]float32, n)
		b.Run("batch="+itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			var scratch []float32
			for i := 0; i < b.N; i++ {
				var err error
				if scratch, err = m.Score(feat, n, out, scratch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkScoreMixed scores batches whose sizes change from call to call, between 1 and
// 200 rows (a live catch-up's mean batch is about 90), as the batcher hands them over.
func BenchmarkScoreMixed(b *testing.B) {
	m := openModel(b)
	rows := loadGolden(b)
	const most = 200
	feat := make([]float32, most*m.NumFeatures())
	for i := 0; i < most; i++ {
		copy(feat[i*m.NumFeatures():], rows[i%len(rows)].Features)
	}
	out := make([]float32, most)
	sizes := make([]int, 251) // a fixed sequence, the same in every run
	for i := range sizes {
		sizes[i] = 1 + (i*7919)%most
	}
	b.ReportAllocs()
	var scratch []float32
	var total int
	for i := 0; i < b.N; i++ {
		n := sizes[i%len(sizes)]
		var err error
		if scratch, err = m.Score(feat[:n*m.NumFeatures()], n, out, scratch); err != nil {
			b.Fatal(err)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
}

func itoa(n int) string { return strconv.Itoa(n) }
