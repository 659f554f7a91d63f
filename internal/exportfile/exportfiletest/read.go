// Package exportfiletest reads export files back for tests of the writers and of the
// export driver, so that both check a file the same way.
package exportfiletest

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Parquet is a Parquet file read back whole.
type Parquet struct {
	Schema    string
	Columns   []string
	RowGroups int
	Codecs    map[format.CompressionCodec]int // column chunks by codec
	Rows      []parquet.Row
}

// ReadParquet reads the Parquet file at path whole, failing t when it cannot.
func ReadParquet(t testing.TB, path string) Parquet {
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
	out := Parquet{Schema: pf.Schema().String(), RowGroups: len(pf.RowGroups()), Codecs: map[format.CompressionCodec]int{}}
	for _, c := range pf.Schema().Fields() {
		out.Columns = append(out.Columns, c.Name())
	}
	for _, rg := range pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			out.Codecs[c.MetaData.Codec]++
		}
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	buf := make([]parquet.Row, 100)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			out.Rows = append(out.Rows, row.Clone())
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
	}
	if int64(len(out.Rows)) != pf.NumRows() {
		t.Fatalf("%s: read %d rows, the footer says %d", path, len(out.Rows), pf.NumRows())
	}
	return out
}
