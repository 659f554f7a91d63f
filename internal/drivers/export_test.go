//go:build !integration

package drivers

import (
	"context"
	"encoding/csv"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/exportfile/exportfiletest"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/topics"
)

// TestExportParquetMatchesCSV exports two days of simulated events on the embedded broker
// to CSV and to Parquet: the files must hold the same rows with the same values. Labels
// are due a day after their transaction and those not due by the end are not written, so
// that about half the rows have none.
func TestExportParquetMatchesCSV(t *testing.T) {
	c := testConfig(t, embeddedBroker(t))
	createInputTopics(t, c, 4)
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := sim.Produce(ctx, p, sim.ProduceOptions{Days: 2, Seed: 3, BadFraction: 0.003, LabelDelay: 24 * time.Hour, HoldLabels: true, Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Validate(config.Needs{Kafka: true})
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	dir := t.TempDir()
	csvPath, pqPath := filepath.Join(dir, "export.csv"), filepath.Join(dir, "export.parquet")
	cs, err := Export(ctx, cc, ExportOptions{Out: "file:" + csvPath}, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Export(ctx, cc, ExportOptions{Out: "file:" + pqPath}, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Rows != ps.Rows || cs.Labelled != ps.Labelled || cs.Rows == 0 || cs.Labelled == 0 || cs.Labelled == cs.Rows || cs.Rows != res.Events-res.Bad || cs.Labelled != res.Labels {
		t.Fatalf("CSV export %+v, Parquet export %+v; want the same, with %d rows, %d labelled", *cs, *ps, res.Events-res.Bad, res.Labels)
	}

	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header, lines := records[0], records[1:]
	pq := exportfiletest.ReadParquet(t, pqPath)
	if len(pq.Rows) != len(lines) || int64(len(lines)) != cs.Rows {
		t.Fatalf("%d Parquet rows, %d CSV rows, summary %d", len(pq.Rows), len(lines), cs.Rows)
	}
	if !slices.Equal(pq.Columns, header) {
		t.Fatalf("Parquet columns %v, CSV header %v", pq.Columns, header)
	}
	csvByID := make(map[int64][]string, len(lines))
	for _, l := range lines {
		id, err := strconv.ParseInt(l[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		csvByID[id] = l
	}
	nFeatures := len(header) - 6
	labelled := 0
	for i, row := range pq.Rows {
		id := row[0].Int64()
		l, ok := csvByID[id]
		if !ok {
			t.Fatalf("Parquet row %d: id %d is not in the CSV (or twice in the Parquet file)", i, id)
		}
		delete(csvByID, id)
		tm, err := time.Parse(time.RFC3339Nano, l[1])
		if err != nil {
			t.Fatal(err)
		}
		if row[1].Int64() != tm.UnixMicro() || row[2].String() != l[2] ||
			strconv.Itoa(int(row[3].Int32())) != l[3] || strconv.FormatInt(row[4].Int64(), 10) != l[4] {
			t.Fatalf("id %d: Parquet %v, CSV %v", id, row, l)
		}
		for k := range nFeatures {
			x, err := strconv.ParseFloat(l[5+k], 32)
			if err != nil {
				t.Fatal(err)
			}
			if math.Float32bits(row[5+k].Float()) != math.Float32bits(float32(x)) {
				t.Fatalf("id %d: %s is %v in Parquet, %s in the CSV", id, header[5+k], row[5+k], l[5+k])
			}
		}
		label := row[5+nFeatures]
		if l[len(l)-1] == "" {
			if !label.IsNull() {
				t.Fatalf("id %d: label %v in Parquet, none in the CSV", id, label)
			}
			continue
		}
		labelled++
		y, err := strconv.ParseFloat(l[len(l)-1], 64)
		if err != nil {
			t.Fatal(err)
		}
		if label.IsNull() || label.Double() != y {
			t.Fatalf("id %d: label %v in Parquet, %s in the CSV", id, label, l[len(l)-1])
		}
	}
	csvInfo, err := os.Stat(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	pqInfo, err := os.Stat(pqPath)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "export CSV vs Parquet: %d rows (%d labelled), %d columns: 0 mismatches; %d bytes of CSV, %d of Parquet",
		len(pq.Rows), labelled, len(header), csvInfo.Size(), pqInfo.Size())
}
