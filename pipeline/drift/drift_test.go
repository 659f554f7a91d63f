package drift

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestReferenceAndPSI: a sample of the training distribution is stable (PSI < 0.1), the
// same values ×10 are a major shift (> 0.25), ties make fewer bins rather than empty ones,
// and a reference survives its JSON.
func TestReferenceAndPSI(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]float32, 20000)
	scores := make([]float32, len(rows))
	for i := range rows {
		rows[i] = []float32{float32(rng.ExpFloat64() * 50), float32(rng.IntN(2))}
		scores[i] = float32(rng.Float64())
	}
	ref, err := Build("m", []string{"amount", "flag"}, rows, scores, DefaultBins)
	if err != nil {
		t.Fatal(err)
	}
	if n := ref.Features[1].Bins(); n != 2 {
		t.Fatalf("a 0/1 feature got %d bins, want 2", n)
	}
	raw, err := json.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	if ref, err = Parse(raw); err != nil {
		t.Fatal(err)
	}
	same, scaled := NewCounts(ref), NewCounts(ref)
	for range 5000 {
		a := float32(rng.ExpFloat64() * 50)
		same.Add([]float32{a, float32(rng.IntN(2))}, float32(rng.Float64()))
		scaled.Add([]float32{a * 10, float32(rng.IntN(2))}, float32(rng.Float64()))
	}
	fs, _ := same.Stats()
	fx, _ := scaled.Stats()
	if fs[0].PSI >= 0.1 || fs[1].PSI >= 0.1 {
		t.Fatalf("same distribution: PSI %v, want < 0.1", fs)
	}
	if fx[0].PSI <= 0.25 || fx[0].OutOfRange == 0 || fx[1].PSI >= 0.1 {
		t.Fatalf("amounts ×10: PSI amount %.3f (outside %.3f), flag %.3f; want > 0.25, some, < 0.1", fx[0].PSI, fx[0].OutOfRange, fx[1].PSI)
	}
	if err := ref.Check([]string{"flag", "amount"}); err == nil {
		t.Fatal("a reference of other features was accepted")
	}
}
