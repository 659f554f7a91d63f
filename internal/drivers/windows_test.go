//go:build !integration

package drivers

import (
	"context"
	"io"
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

// TestExportMatchesHandbookBruteForce generates a log of nine simulated days (over 80k
// events, with malformed ones) and their delayed labels, exports it through the operator,
// and recomputes every feature of every event by brute force from the handbook's
// definitions: every column of every row must match exactly, and every label must be the
// transaction's. Nine days give the terminal windows (which look back from t-7d) two days
// of history: the eleven days it ran on before added events, not cases.
func TestExportMatchesHandbookBruteForce(t *testing.T) {
	c := testConfig(t, embeddedBroker(t))
	createInputTopics(t, c, 4)
	const days, seed, bad = 9, 7, 0.003
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
	if len(txs) < 80_000 || int64(len(txs)) != res.Events-res.Bad {
		t.Fatalf("%d well-formed transactions regenerated, %d produced (want the same, and at least 80k)", len(txs), res.Events-res.Bad)
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
	if withTerminalHistory == 0 {
		t.Fatal("no event has terminal history: the terminal windows were not tested")
	}
	report(t, "export vs brute force: %d events (%d days, %d malformed dead-lettered), %d features each, %d with terminal history: 0 mismatches",
		len(txs), days, res.Bad, cc.Features.Len(), withTerminalHistory)
}
