package bench

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/scorer"
)

func TestGateForPassesTheShareClosestToAsked(t *testing.T) {
	// 100 scores: 80 at 0.1, 15 at 0.2, 4 at 0.5, 1 at 0.9. A plain 95% quantile is 0.2,
	// which passes 20%; the share closest to 5% is 0.5's.
	var s []float32
	for i := 0; i < 100; i++ {
		switch {
		case i < 80:
			s = append(s, 0.1)
		case i < 95:
			s = append(s, 0.2)
		case i < 99:
			s = append(s, 0.5)
		default:
			s = append(s, 0.9)
		}
	}
	if g := gateFor(s, 0.05); g != 0.5 {
		t.Errorf("gate %v, want 0.5", g)
	}
}

// TestReadTestSetRemovesKnownCompromised follows train.py: a training fraud's customer is
// left out of every test day; a fraud on delay day j (counted from 0) is known from test
// day j + 1.
func TestReadTestSetRemovesKnownCompromised(t *testing.T) {
	start := time.Date(2018, 7, 25, 0, 0, 0, 0, time.UTC)
	p := handbookPeriods{Train: [2]time.Time{start, start.AddDate(0, 0, 2)}, TrainDays: 2, DelayDays: 2, TestDays: 2}
	day := func(d int) string { return start.AddDate(0, 0, d).Add(time.Hour).Format(time.RFC3339) }
	csv := "transaction_id,tx_datetime,customer_id,partition,offset,A,B,TX_FRAUD\n" +
		"1," + day(0) + ",10,0,0,1,2,1\n" + // training fraud of 10: removed from every test day
		"2," + day(2) + ",11,0,1,1,2,1\n" + // delay day 0 fraud of 11: known from test day 1
		"3," + day(3) + ",12,0,2,1,2,1\n" + // delay day 1 fraud of 12: known from test day 2 (none)
		"4," + day(4) + ",10,0,3,0.1,0.2,0\n" + // test day 0: removed
		"5," + day(4) + ",11,0,4,0.3,0.4,1\n" + // kept
		"6," + day(5) + ",11,0,5,0.1,0.2,0\n" + // test day 1: removed
		"7," + day(5) + ",12,0,6,0.5,0.6,0\n" + // kept
		"8," + day(5) + ",13,0,7,0.7,0.8,\n" + // no label: skipped
		"9," + day(5) + ",10,0,8,0.9,1.1,0\n" + // removed
		"10," + day(6) + ",14,0,9,9,9,0\n" // after the test period
	s, err := readTestSet(strings.NewReader(csv), p)
	if err != nil {
		t.Fatal(err)
	}
	if s.rows() != 2 || s.removed != 3 || s.card[0] != "11" || s.card[1] != "12" || s.nf != 2 {
		t.Fatalf("rows %d (cards %v), removed %d, want cards 11 and 12 and 3 removed", s.rows(), s.card, s.removed)
	}
	if s.features[0] != float32(0.3) || s.features[3] != float32(0.6) || !s.fraud[0] || s.fraud[1] || s.day[1] != 5 {
		t.Errorf("features %v, fraud %v, days %v", s.features, s.fraud, s.day)
	}
}

// TestCascadeRescoresExactlyTheRowsAtOrAboveTheGate runs the cascade of the two reference
// models on the golden rows: rows under the gate keep the cheap score, the others get the
// forest's, bit for bit.
func TestCascadeRescoresExactlyTheRowsAtOrAboveTheGate(t *testing.T) {
	forest, err := scorer.Open(scorer.Options{Path: "../../testdata/model/fraud.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	defer forest.Close()
	cheap, err := scorer.Open(scorer.Options{Path: "../../testdata/model/fraud-small.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	defer cheap.Close()
	nf := forest.NumFeatures()
	rows, err := lifecycle.GoldenRows("../../testdata/model/golden.jsonl", nf)
	if err != nil {
		t.Fatal(err)
	}
	n := len(rows) / nf
	c, err := scoreAll(cheap, rows, nf, n)
	if err != nil {
		t.Fatal(err)
	}
	f, err := scoreAll(forest, rows, nf, n)
	if err != nil {
		t.Fatal(err)
	}
	gate := gateFor(c, 0.05)
	got, passed, err := scoreCascade(cheap, forest, rows, nf, n, gate)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range got {
		exp := c[i]
		if c[i] >= gate {
			exp = f[i]
			want++
		}
		if math.Float32bits(got[i]) != math.Float32bits(exp) {
			t.Fatalf("row %d: cascade %v, want %v (cheap %v, forest %v, gate %v)", i, got[i], exp, c[i], f[i], gate)
		}
	}
	if passed != want || passed == 0 || passed == n {
		t.Errorf("%d rows passed the gate, want %d (of %d)", passed, want, n)
	}
}
