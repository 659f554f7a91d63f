package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/topics"
)

// testExportLayout is a small export: three features, the key an int or a string.
func testExportLayout(stringKey bool) exportLayout {
	return exportLayout{
		ID: "transaction_id", Key: "customer_id", StringKey: stringKey,
		Features: []string{"TX_AMOUNT", "TX_DURING_NIGHT", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"},
		Label:    "TX_FRAUD",
	}
}

// testExportRecords are rows whose floats need every bit: signed zeros, the smallest
// subnormal, the largest float32, fractions with no short decimal form.
func testExportRecords() []exportRecord {
	t0 := time.Date(2018, 4, 1, 0, 7, 56, 0, time.UTC)
	return []exportRecord{
		{ID: 0, Time: t0, KeyInt: 596, KeyStr: "c-596", Partition: 2, Offset: 0,
			Features: []float32{57.16, 1, 57.16}, Label: 0, HasLabel: true},
		{ID: 1, Time: t0.Add(1500 * time.Millisecond), KeyInt: 4961, KeyStr: "c-4961", Partition: 0, Offset: 17,
			Features: []float32{float32(1) / 3, 0, float32(math.Copysign(0, -1))}, Label: 1, HasLabel: true},
		{ID: 1 << 40, Time: t0.Add(36*time.Hour + 250*time.Microsecond), KeyInt: 2, KeyStr: "", Partition: 1, Offset: 1 << 33,
			Features: []float32{math.MaxFloat32, math.SmallestNonzeroFloat32, -2.5e-7}},
	}
}

func TestCSVExportWriter(t *testing.T) {
	for _, tc := range []struct {
		stringKey bool
		want      string
	}{
		{false, `transaction_id,tx_datetime,customer_id,partition,offset,TX_AMOUNT,TX_DURING_NIGHT,CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW,TX_FRAUD
0,2018-04-01T00:07:56Z,596,2,0,57.16,1,57.16,0
1,2018-04-01T00:07:57.5Z,4961,0,17,0.33333334,0,-0,1
1099511627776,2018-04-02T12:07:56.00025Z,2,1,8589934592,3.4028235e+38,1e-45,-2.5e-07,
`},
		{true, `transaction_id,tx_datetime,customer_id,partition,offset,TX_AMOUNT,TX_DURING_NIGHT,CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW,TX_FRAUD
0,2018-04-01T00:07:56Z,c-596,2,0,57.16,1,57.16,0
1,2018-04-01T00:07:57.5Z,c-4961,0,17,0.33333334,0,-0,1
1099511627776,2018-04-02T12:07:56.00025Z,,1,8589934592,3.4028235e+38,1e-45,-2.5e-07,
`},
	} {
		t.Run(fmt.Sprintf("stringKey=%v", tc.stringKey), func(t *testing.T) {
			var b bytes.Buffer
			w, err := newCSVExportWriter(&b, testExportLayout(tc.stringKey))
			if err != nil {
				t.Fatal(err)
			}
			recs := testExportRecords()
			for i := range recs {
				if err := w.WriteRow(&recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want {
				t.Fatalf("CSV export:\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// parquetExport is a Parquet file read back whole.
type parquetExport struct {
	schema    string
	columns   []string
	rowGroups int
	codecs    map[format.CompressionCodec]int // column chunks by codec
	rows      []parquet.Row
}

func readParquetExport(t *testing.T, path string) parquetExport {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	out := parquetExport{schema: pf.Schema().String(), rowGroups: len(pf.RowGroups()), codecs: map[format.CompressionCodec]int{}}
	for _, c := range pf.Schema().Fields() {
		out.columns = append(out.columns, c.Name())
	}
	for _, rg := range pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			out.codecs[c.MetaData.Codec]++
		}
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	buf := make([]parquet.Row, 100)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			out.rows = append(out.rows, row.Clone())
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
	}
	if int64(len(out.rows)) != pf.NumRows() {
		t.Fatalf("%s: read %d rows, the footer says %d", path, len(out.rows), pf.NumRows())
	}
	return out
}

// TestParquetExportWriter writes rows through the Parquet writer, more than a batch and in
// several row groups, reads them back with the library and checks every column's name,
// type and value: float bits exact, the missing label null.
func TestParquetExportWriter(t *testing.T) {
	for _, stringKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("stringKey=%v", stringKey), func(t *testing.T) {
			key := "int64 customer_id (INT(64,true))"
			if stringKey {
				key = "binary customer_id (STRING)"
			}
			wantSchema := `message export {
	required int64 transaction_id (INT(64,true));
	required int64 tx_datetime (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	required ` + key + `;
	required int32 partition (INT(32,true));
	required int64 offset (INT(64,true));
	required float TX_AMOUNT;
	required float TX_DURING_NIGHT;
	required float CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW;
	optional double TX_FRAUD;
}`
			// The fixed rows, then enough more to fill batches and row groups; the string
			// keys of every batch are of different lengths, and every third row has no label.
			recs := testExportRecords()
			for i := range 3 * parquetBatchRows {
				recs = append(recs, exportRecord{
					ID: int64(1000 + i), Time: time.Unix(1522540800+int64(i)*37, int64(i)*1000).UTC(),
					KeyInt: int64(i % 97), KeyStr: strings.Repeat("k", i%13) + strconv.Itoa(i),
					Partition: int32(i % 4), Offset: int64(i / 4),
					Features: []float32{math.Float32frombits(uint32(i) * 2654435761 % 0x7f000000), float32(i % 2), -float32(i) / 7},
					Label:    float64(i%2) / 3, HasLabel: i%3 != 0,
				})
			}
			path := filepath.Join(t.TempDir(), "export.parquet")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			const rowGroupRows = 1000
			w, err := newParquetExportWriterGroups(f, testExportLayout(stringKey), rowGroupRows)
			if err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				if err := w.WriteRow(&recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			got := readParquetExport(t, path)
			if got.schema != wantSchema {
				t.Fatalf("schema:\n%s\nwant\n%s", got.schema, wantSchema)
			}
			if want := (len(recs) + rowGroupRows - 1) / rowGroupRows; got.rowGroups != want {
				t.Errorf("%d row groups, want %d", got.rowGroups, want)
			}
			if len(got.codecs) != 1 || got.codecs[format.Zstd] == 0 {
				t.Errorf("column chunks by codec: %v, want all zstd", got.codecs)
			}
			if len(got.rows) != len(recs) {
				t.Fatalf("%d rows, want %d", len(got.rows), len(recs))
			}
			for i, row := range got.rows {
				want := &recs[i]
				if len(row) != 9 {
					t.Fatalf("row %d: %d values, want 9: %v", i, len(row), row)
				}
				for j, v := range row {
					if v.Column() != j {
						t.Fatalf("row %d: value %d is of column %d", i, j, v.Column())
					}
				}
				key := row[2].String()
				wantKey := strconv.FormatInt(want.KeyInt, 10)
				if stringKey {
					wantKey = want.KeyStr
				}
				if row[0].Int64() != want.ID || row[1].Int64() != want.Time.UnixMicro() || key != wantKey ||
					row[3].Int32() != want.Partition || row[4].Int64() != want.Offset {
					t.Fatalf("row %d: %v, want %+v", i, row, *want)
				}
				for k, x := range want.Features {
					if v := row[5+k]; v.Kind() != parquet.Float || math.Float32bits(v.Float()) != math.Float32bits(x) {
						t.Fatalf("row %d: %s is %v (bits %#x), want %v (bits %#x)", i, testExportLayout(stringKey).Features[k], v, math.Float32bits(v.Float()), x, math.Float32bits(x))
					}
				}
				switch label := row[8]; {
				case !want.HasLabel && !label.IsNull():
					t.Fatalf("row %d: label %v, want null", i, label)
				case want.HasLabel && (label.IsNull() || math.Float64bits(label.Double()) != math.Float64bits(want.Label)):
					t.Fatalf("row %d: label %v, want %v", i, label, want.Label)
				}
			}
		})
	}
}

func TestExportFormatByExtension(t *testing.T) {
	for path, want := range map[string]string{"a.csv": "csv", "dir.x/A.CSV": "csv", "a.parquet": "parquet", "a.Parquet": "parquet", "a.tsv": "", "a": "", "a.csv.gz": ""} {
		newWriter, err := exportFormat(path)
		switch {
		case want == "" && err == nil:
			t.Errorf("%s: no error", path)
		case want == "" && !strings.Contains(err.Error(), ".csv or .parquet"):
			t.Errorf("%s: error %q does not say what to use", path, err)
		case want == "":
		case err != nil:
			t.Errorf("%s: %v", path, err)
		default:
			w, err := newWriter(io.Discard, testExportLayout(false))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", w), "*main."), "ExportWriter"); strings.ToLower(got) != want {
				t.Errorf("%s: %T, want the %s writer", path, w, want)
			}
		}
	}
	if _, err := newParquetExportWriter(io.Discard, exportLayout{ID: "id", Key: "offset", Features: []string{"f"}, Label: "y"}); err == nil {
		t.Error("a layout with the column offset twice makes a Parquet writer")
	}
}

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
	cs, err := runExport(ctx, cc, exportOptions{out: "file:" + csvPath}, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := runExport(ctx, cc, exportOptions{out: "file:" + pqPath}, log, io.Discard)
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
	pq := readParquetExport(t, pqPath)
	if len(pq.rows) != len(lines) || int64(len(lines)) != cs.Rows {
		t.Fatalf("%d Parquet rows, %d CSV rows, summary %d", len(pq.rows), len(lines), cs.Rows)
	}
	if !slices.Equal(pq.columns, header) {
		t.Fatalf("Parquet columns %v, CSV header %v", pq.columns, header)
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
	for i, row := range pq.rows {
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
		len(pq.rows), labelled, len(header), csvInfo.Size(), pqInfo.Size())
}

// BenchmarkExportWriter is the per-row cost of each format: the rows of a handbook export
// (15 features), written to io.Discard.
func BenchmarkExportWriter(b *testing.B) {
	layout := testExportLayout(false)
	layout.Features = make([]string, 15)
	for i := range layout.Features {
		layout.Features[i] = fmt.Sprintf("F%d", i)
	}
	rec := exportRecord{ID: 1, Time: time.Unix(1522540800, 0).UTC(), KeyInt: 596, Partition: 3, Offset: 12345,
		Features: make([]float32, 15), Label: 1, HasLabel: true}
	for i := range rec.Features {
		rec.Features[i] = float32(i) / 7
	}
	for name, newWriter := range map[string]newExportWriterFunc{"csv": newCSVExportWriter, "parquet": newParquetExportWriter} {
		b.Run(name, func(b *testing.B) {
			w, err := newWriter(io.Discard, layout)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				rec.ID, rec.Offset = int64(i), int64(i)
				rec.Time = rec.Time.Add(time.Second)
				if err := w.WriteRow(&rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
