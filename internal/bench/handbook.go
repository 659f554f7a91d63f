package bench

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// handbookPeriods are the training, delay and test periods of a model, as
// testdata/model/train.py records them in metrics.json ("periods").
type handbookPeriods struct {
	Train     [2]time.Time `json:"train"`
	Test      [2]time.Time `json:"test"`
	TrainDays int          `json:"train_days"`
	DelayDays int          `json:"delay_days"`
	TestDays  int          `json:"test_days"`
}

// readPeriods reads the periods of the metrics.json at path.
func readPeriods(path string) (handbookPeriods, error) {
	var m struct {
		Periods handbookPeriods `json:"periods"`
		TopK    int             `json:"top_k"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return handbookPeriods{}, fmt.Errorf("reading the model's training periods: %w (train.py writes metrics.json beside the model)", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return handbookPeriods{}, fmt.Errorf("%s: %w", path, err)
	}
	p := m.Periods
	if p.TrainDays <= 0 || p.TestDays <= 0 || p.DelayDays < 0 || p.Train[0].IsZero() {
		return handbookPeriods{}, fmt.Errorf("%s: no training/delay/test periods", path)
	}
	return p, nil
}

// testSet is the handbook's test period of a features CSV: the labelled rows of the test
// days, less the transactions of customers known to be compromised by then.
type testSet struct {
	features []float32 // row-major, nFeatures per row
	nf       int
	fraud    []bool
	card     []string
	day      []int64 // days since the start of training
	removed  int     // rows of known compromised customers left out
}

func (s *testSet) rows() int { return len(s.fraud) }

// readTestSet reads the CSV that `streamscore features` writes, as train.py does: the
// feature columns are those strictly between "offset" and "TX_FRAUD"; rows without a
// label are skipped; for test day i, customers with a fraud in the training period or in
// the delay days up to the training end + i − 1 are removed (the handbook's
// get_train_test_set). Values are parsed as float64 and rounded to float32, as numpy does.
func readTestSet(r io.Reader, p handbookPeriods) (*testSet, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	iTime, iCust, iOff, iLabel := col["tx_datetime"], col["customer_id"], col["offset"], col["TX_FRAUD"]
	for _, n := range []string{"tx_datetime", "customer_id", "offset", "TX_FRAUD"} {
		if _, ok := col[n]; !ok {
			return nil, fmt.Errorf("the CSV has no %s column: write it with `streamscore features`", n)
		}
	}
	var feat []int
	for i := iOff + 1; i < iLabel; i++ {
		if i != iCust {
			feat = append(feat, i)
		}
	}
	s := &testSet{nf: len(feat)}
	start := p.Train[0]
	testFrom := p.TrainDays + p.DelayDays
	known := map[string]int{} // customer → first test day that knows a fraud of theirs
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339, rec[iTime])
		if err != nil {
			return nil, fmt.Errorf("line %d: tx_datetime: %w", line, err)
		}
		secs := t.Sub(start).Seconds()
		day := int64(secs / 86400)
		if secs < 0 || day >= int64(testFrom+p.TestDays) || rec[iLabel] == "" {
			continue
		}
		fraud := rec[iLabel] == "1"
		cust := rec[iCust]
		if day < int64(testFrom) {
			if fraud {
				knowFraud(known, cust, int(day), p.TrainDays)
			}
			continue
		}
		for _, i := range feat {
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", line, header[i], err)
			}
			s.features = append(s.features, float32(v))
		}
		s.fraud = append(s.fraud, fraud)
		s.card = append(s.card, cust)
		s.day = append(s.day, day)
	}
	return s.dropKnown(known, testFrom), nil
}

// knowFraud records a fraud of cust on day (before the test period): a training fraud is
// known from the first test day; a delay-day fraud on day d is known to test day i when
// d <= train_days + i − 1.
func knowFraud(known map[string]int, cust string, day, trainDays int) {
	k := 0
	if day >= trainDays {
		k = day - trainDays + 1
	}
	if prev, ok := known[cust]; !ok || k < prev {
		known[cust] = k
	}
}

// dropKnown removes the rows of test day i whose customer was known compromised by then.
func (s *testSet) dropKnown(known map[string]int, testFrom int) *testSet {
	out := &testSet{nf: s.nf}
	for r := range s.fraud {
		if k, ok := known[s.card[r]]; ok && k <= int(s.day[r])-testFrom {
			out.removed++
			continue
		}
		out.features = append(out.features, s.features[r*s.nf:(r+1)*s.nf]...)
		out.fraud = append(out.fraud, s.fraud[r])
		out.card = append(out.card, s.card[r])
		out.day = append(out.day, s.day[r])
	}
	return out
}
