package evaluate

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// sklearnExample is testdata/sklearn_values.json, written by sklearn_values.py.
type sklearnExample struct {
	Rows []struct {
		Day   int64   `json:"day"`
		Card  string  `json:"card"`
		Score float64 `json:"score"`
		Fraud int     `json:"fraud"`
	} `json:"rows"`
	K             int     `json:"k"`
	AUC           float64 `json:"auc"`
	AP            float64 `json:"average_precision"`
	CardPrecision float64 `json:"card_precision_at_k"`
}

func loadExample(t *testing.T) sklearnExample {
	t.Helper()
	b, err := os.ReadFile("testdata/sklearn_values.json")
	if err != nil {
		t.Fatal(err)
	}
	var ex sklearnExample
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestAgreesWithScikitLearnAndTrainPy(t *testing.T) {
	ex := loadExample(t)
	var scored []Scored
	var cards []CardRow
	ties := map[float64]int{}
	for _, r := range ex.Rows {
		scored = append(scored, Scored{Score: r.Score, Fraud: r.Fraud == 1})
		cards = append(cards, CardRow{Day: r.Day, Card: r.Card, Score: r.Score, Fraud: r.Fraud == 1})
		ties[r.Score]++
	}
	if len(ties) > len(ex.Rows)/2 {
		t.Fatalf("the example should have many tied scores: %d distinct of %d", len(ties), len(ex.Rows))
	}
	auc, ok := AUC(scored)
	if !ok || math.Abs(auc-ex.AUC) > 1e-12 {
		t.Errorf("AUC = %v (%v), scikit-learn %v", auc, ok, ex.AUC)
	}
	ap, ok := AveragePrecision(scored)
	if !ok || math.Abs(ap-ex.AP) > 1e-12 {
		t.Errorf("AP = %v (%v), scikit-learn %v", ap, ok, ex.AP)
	}
	cp, ok := CardPrecisionAtK(cards, ex.K)
	if !ok || math.Abs(cp-ex.CardPrecision) > 1e-12 {
		t.Errorf("card precision@%d = %v (%v), train.py %v", ex.K, cp, ok, ex.CardPrecision)
	}
}

func TestAUCAndAPEdgeCases(t *testing.T) {
	one := []Scored{{0.1, false}, {0.9, false}}
	if _, ok := AUC(one); ok {
		t.Error("AUC of one class should be undefined")
	}
	if _, ok := AveragePrecision(one); ok {
		t.Error("AP without a fraud should be undefined")
	}
	if _, ok := AUC(nil); ok {
		t.Error("AUC of nothing should be undefined")
	}
	// All tied: AUC 1/2, AP the fraud rate.
	tied := []Scored{{0.5, true}, {0.5, false}, {0.5, false}, {0.5, false}}
	if auc, _ := AUC(tied); auc != 0.5 {
		t.Errorf("AUC of tied scores = %v, want 0.5", auc)
	}
	if ap, _ := AveragePrecision(tied); ap != 0.25 {
		t.Errorf("AP of tied scores = %v, want 0.25", ap)
	}
	perfect := []Scored{{0.9, true}, {0.8, true}, {0.1, false}}
	if auc, _ := AUC(perfect); auc != 1 {
		t.Errorf("AUC of a perfect ranking = %v", auc)
	}
	if ap, _ := AveragePrecision(perfect); ap != 1 {
		t.Errorf("AP of a perfect ranking = %v", ap)
	}
	if _, ok := CardPrecisionAtK(nil, 100); ok {
		t.Error("card precision of nothing should be undefined")
	}
}

// Published values: Newcombe, R. G. (1998). Two-sided confidence intervals for the single
// proportion (Statistics in Medicine 17, 857–872), Table I, method 3; and Interval
// estimation for the difference between independent proportions (ibid., 873–890),
// Table II, method 10.
func TestWilsonAgainstNewcombe1998(t *testing.T) {
	for _, c := range []struct {
		x, n   int64
		lo, hi float64
	}{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
	} {
		_, ci, ok := Wilson(c.x, c.n)
		if !ok || math.Abs(ci.Lo-c.lo) > 5e-5 || math.Abs(ci.Hi-c.hi) > 5e-5 {
			t.Errorf("Wilson(%d/%d) = [%.5f, %.5f], published [%.4f, %.4f]", c.x, c.n, ci.Lo, ci.Hi, c.lo, c.hi)
		}
	}
	if _, _, ok := Wilson(0, 0); ok {
		t.Error("Wilson(0/0) should be undefined")
	}
}

func TestNewcombeAgainstNewcombe1998(t *testing.T) {
	for _, c := range []struct {
		x1, n1, x2, n2 int64
		lo, hi         float64
	}{
		{56, 70, 48, 80, 0.0524, 0.3339},
		{9, 10, 3, 10, 0.1705, 0.8090},
		{6, 7, 2, 7, 0.0582, 0.8062},
		{5, 56, 0, 29, -0.0381, 0.1926},
		{0, 10, 0, 20, -0.1611, 0.2775},
	} {
		_, ci, ok := Newcombe(c.x1, c.n1, c.x2, c.n2)
		if !ok || math.Abs(ci.Lo-c.lo) > 5e-5 || math.Abs(ci.Hi-c.hi) > 5e-5 {
			t.Errorf("Newcombe(%d/%d − %d/%d) = [%.5f, %.5f], published [%.4f, %.4f]", c.x1, c.n1, c.x2, c.n2, ci.Lo, ci.Hi, c.lo, c.hi)
		}
	}
	if _, _, ok := Newcombe(1, 2, 0, 0); ok {
		t.Error("a difference with an undefined proportion should be undefined")
	}
}
