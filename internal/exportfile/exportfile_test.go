package exportfile

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/streamscore/streamscore/internal/exportfile/exportfiletest"
)

// testExportLayout is a small export: three features, the key an int or a string.
func testExportLayout(stringKey bool) Layout {
	return Layout{
		ID: "transaction_id", Key: "customer_id", StringKey: stringKey,
		Features: []string{"TX_AMOUNT", "TX_DURING_NIGHT", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"},
		Label:    "TX_FRAUD",
	}
}

// testExportRecords are rows whose floats need every bit: signed zeros, the smallest
// subnormal, the largest float32, fractions with no short decimal form.
func testExportRecords() []Row {
	t0 := time.Date(2018, 4, 1, 0, 7, 56, 0, time.UTC)
	return []Row{
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
			w, err := NewCSV(&b, testExportLayout(tc.stringKey))
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
				recs = append(recs, Row{
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
			w, err := newParquetGroups(f, testExportLayout(stringKey), rowGroupRows)
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

			got := exportfiletest.ReadParquet(t, path)
			if got.Schema != wantSchema {
				t.Fatalf("schema:\n%s\nwant\n%s", got.Schema, wantSchema)
			}
			if want := (len(recs) + rowGroupRows - 1) / rowGroupRows; got.RowGroups != want {
				t.Errorf("%d row groups, want %d", got.RowGroups, want)
			}
			if len(got.Codecs) != 1 || got.Codecs[format.Zstd] == 0 {
				t.Errorf("column chunks by codec: %v, want all zstd", got.Codecs)
			}
			if len(got.Rows) != len(recs) {
				t.Fatalf("%d rows, want %d", len(got.Rows), len(recs))
			}
			for i, row := range got.Rows {
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
		newWriter, err := FormatOf(path)
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
			if got := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", w), "*exportfile."), "Writer"); strings.ToLower(got) != want {
				t.Errorf("%s: %T, want the %s writer", path, w, want)
			}
		}
	}
	if _, err := NewParquet(io.Discard, Layout{ID: "id", Key: "offset", Features: []string{"f"}, Label: "y"}); err == nil {
		t.Error("a layout with the column offset twice makes a Parquet writer")
	}
}

// BenchmarkExportWriter is the per-row cost of each format: the rows of a handbook export
// (15 features), written to io.Discard.
func BenchmarkExportWriter(b *testing.B) {
	layout := testExportLayout(false)
	layout.Features = make([]string, 15)
	for i := range layout.Features {
		layout.Features[i] = fmt.Sprintf("F%d", i)
	}
	rec := Row{ID: 1, Time: time.Unix(1522540800, 0).UTC(), KeyInt: 596, Partition: 3, Offset: 12345,
		Features: make([]float32, 15), Label: 1, HasLabel: true}
	for i := range rec.Features {
		rec.Features[i] = float32(i) / 7
	}
	for name, newWriter := range map[string]NewWriterFunc{"csv": NewCSV, "parquet": NewParquet} {
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
