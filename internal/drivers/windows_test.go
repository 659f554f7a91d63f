package drivers

import (
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/topics"
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

// TestExportMatchesHandbookBruteForce generates a log of over 100k events (with malformed
// ones) and their delayed labels, exports it through the operator, and recomputes every
// feature of every event by brute force from the handbook's definitions: every column of
// every row must match exactly, and every label must be the transaction's.
func TestExportMatchesHandbookBruteForce(t *testing.T) {
	c := testConfig(t, embeddedBroker(t))
	createInputTopics(t, c, 4)
	const days, seed, bad = 11, 7, 0.003
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := sim.Produce(ctx, p, sim.ProduceOptions{Days: days, Seed: seed, BadFraction: bad, Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The same stream again, outside Kafka: the transactions that were written well-formed.
	gen, corr := sim.New(sim.Config{Seed: seed}), sim.NewCorruptor(seed, bad)
	var txs []sim.Tx
	for {
		tx := gen.Next()
		if gen.Day() >= days {
			break
		}
		if _, kind := corr.Maybe(tx.AppendEvent(nil)); kind == "" {
			txs = append(txs, tx)
		}
	}
	if len(txs) < 100_000 || int64(len(txs)) != res.Events-res.Bad {
		t.Fatalf("%d well-formed transactions regenerated, %d produced (want the same, and at least 100k)", len(txs), res.Events-res.Bad)
	}
	want := handbookFeatures(txs)

	cc, err := c.Validate(config.Needs{Kafka: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export.csv")
	s, err := Export(ctx, cc, ExportOptions{Out: "file:" + out}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rows := readExport(t, out, cc.Features.Len())
	if int64(len(rows)) != s.Rows || len(rows) != len(txs) || s.DeadLettered != res.Bad {
		t.Fatalf("export: %d rows (summary %d), %d dead-lettered; want %d rows, %d dead-lettered", len(rows), s.Rows, s.DeadLettered, len(txs), res.Bad)
	}
	withTerminalHistory := 0
	for _, tx := range txs {
		row, ok := rows[tx.ID]
		if !ok {
			t.Fatalf("transaction %d is not in the export", tx.ID)
		}
		w := want[tx.ID]
		for j := range w {
			if row.features[j] != w[j] {
				t.Fatalf("transaction %d (%s, customer %d, terminal %d): column %s is %v, brute force %v\nexport %v\nbrute  %v",
					tx.ID, tx.Time.Format(time.RFC3339), tx.CustomerID, tx.TerminalID, cc.Features.Names()[j], row.features[j], w[j], row.features, w)
			}
		}
		if row.label != strconv.Itoa(tx.Fraud) {
			t.Fatalf("transaction %d: label %q, want %d", tx.ID, row.label, tx.Fraud)
		}
		if w[9] > 0 {
			withTerminalHistory++
		}
	}
	report(t, "export vs brute force: %d events (%d days, %d malformed dead-lettered), %d features each, %d with terminal history: 0 mismatches",
		len(txs), days, res.Bad, cc.Features.Len(), withTerminalHistory)
}
