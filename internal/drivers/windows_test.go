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
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/topics"
)

// TestExportMatchesHandbookBruteForce generates a log of nine simulated days (with
// malformed events) and their delayed labels, exports it through the operator, and
// recomputes every feature of every event by brute force from the handbook's definitions:
// every column of every row must match exactly, and every label must be the transaction's.
// Nine days give the terminal windows (which look back from t-7d) two days of history:
// the eleven days it ran on before added events, not cases. The sample is exportSample's.
func TestExportMatchesHandbookBruteForce(t *testing.T) {
	brokers, population, minEvents := exportSample(t)
	c := testConfig(t, brokers)
	createInputTopics(t, c, 4)
	const days, bad = 9, 0.003
	seed := population.Seed
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := sim.Produce(ctx, p, sim.ProduceOptions{Days: days, Stream: sim.NewStreamOf(population, bad), Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The same stream again, outside Kafka: the transactions that were written well-formed.
	gen, corr := sim.New(population), sim.NewCorruptor(seed, bad)
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
	if len(txs) < minEvents || int64(len(txs)) != res.Events-res.Bad {
		t.Fatalf("%d well-formed transactions regenerated, %d produced (want the same, and at least %d)", len(txs), res.Events-res.Bad, minEvents)
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
	report(t, "export vs brute force: %d events (%d days, %d customers, %d terminals, %d malformed dead-lettered), %d features each, %d with terminal history: 0 mismatches",
		len(txs), days, population.Customers, population.Terminals, res.Bad, cc.Features.Len(), withTerminalHistory)
}

// exportSample is the broker and the simulated population of
// TestExportMatchesHandbookBruteForce, and the fewest well-formed events it must check.
// Without -race: the handbook's population (5,000 customers, 10,000 terminals: over 80k
// events in nine days); make test runs it so in the integration tier, on Apache Kafka.
// Under -race (the fast tier, on the embedded broker), where each event costs ten times
// as much CPU: a fifth of both, so that each customer's and each terminal's days, and so
// their windows, look as they do in the full sample, about 17k events.
func exportSample(t *testing.T) (brokers []string, population sim.Config, minEvents int) {
	population, minEvents = sim.Config{Seed: 7, Customers: 5000, Terminals: 10000}, 80_000
	if testenv.Race {
		population.Customers, population.Terminals, minEvents = 1000, 2000, 15_000
	}
	if testenv.Integration {
		return testenv.Brokers(t), population, minEvents
	}
	b, err := topics.NewEmbeddedBroker(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addrs(), population, minEvents
}
