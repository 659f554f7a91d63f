package drivers

import (
	"encoding/csv"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/sim"
)

// exportRow is one row of an export CSV.
type exportRow struct {
	partition int32
	offset    int64
	features  []float32
	label     string
}

func readExport(t *testing.T, path string, nFeatures int) map[int64]exportRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(header) != 5+nFeatures+1 {
		t.Fatalf("export header has %d columns, want %d: %v", len(header), 6+nFeatures, header)
	}
	out := map[int64]exportRow{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.ParseInt(rec[0], 10, 64)
		p, _ := strconv.ParseInt(rec[3], 10, 32)
		o, _ := strconv.ParseInt(rec[4], 10, 64)
		row := exportRow{partition: int32(p), offset: o, label: rec[len(rec)-1]}
		for _, s := range rec[5 : 5+nFeatures] {
			x, err := strconv.ParseFloat(s, 32)
			if err != nil {
				t.Fatalf("transaction %d: %v", id, err)
			}
			row.features = append(row.features, float32(x))
		}
		if _, dup := out[id]; dup {
			t.Fatalf("transaction %d exported twice", id)
		}
		out[id] = row
	}
}

// handbookFeatures computes the 15 baseline features of the Fraud Detection Handbook for
// every transaction, straight from its definitions and independently of the operator:
// customer windows over (t-n days, t] including the transaction, terminal windows over
// (t-7d-n days, t-7d] of every earlier transaction and its label.
func handbookFeatures(txs []sim.Tx) map[int64][]float32 {
	byCust := map[int64][]int{}
	byTerm := map[int64][]int{}
	out := make(map[int64][]float32, len(txs))
	const day = 24 * time.Hour
	for i := range txs {
		tx := &txs[i]
		byCust[tx.CustomerID] = append(byCust[tx.CustomerID], i)
		f := []float32{float32(tx.Amount), 0, 0}
		if wd := tx.Time.Weekday(); wd == time.Saturday || wd == time.Sunday {
			f[1] = 1
		}
		if tx.Time.Hour() <= 6 {
			f[2] = 1
		}
		for _, n := range []time.Duration{1, 7, 30} {
			var cnt, sum float64
			for _, j := range byCust[tx.CustomerID] { // oldest first: the sum's order
				if txs[j].Time.After(tx.Time.Add(-n*day)) && !txs[j].Time.After(tx.Time) {
					cnt++
					sum += txs[j].Amount
				}
			}
			f = append(f, float32(cnt), float32(sum/cnt))
		}
		hi := tx.Time.Add(-7 * day)
		for _, n := range []time.Duration{1, 7, 30} {
			var cnt, frauds float64
			for _, j := range byTerm[tx.TerminalID] {
				if txs[j].Time.After(hi.Add(-n*day)) && !txs[j].Time.After(hi) {
					cnt++
					frauds += float64(txs[j].Fraud)
				}
			}
			risk := 0.0
			if cnt > 0 {
				risk = frauds / cnt
			}
			f = append(f, float32(cnt), float32(risk))
		}
		byTerm[tx.TerminalID] = append(byTerm[tx.TerminalID], i)
		out[tx.ID] = f
	}
	return out
}
