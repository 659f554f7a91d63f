// Package exportfile writes the training sets of 'export': one row per scored event,
// the same columns in CSV or Parquet. It exists apart from the export driver so that the
// file formats, which a training script depends on, are tested on their own.
package exportfile

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// The export sink hands every scorable event to one Writer; the writer owns only the encoding of the rows, so that CSV and Parquet
// carry the same columns in the same order and differ in nothing else.

// Layout names the columns of an export, in file order: the id, the event time
// (tx_datetime), the key, the source partition and offset, one column per feature in
// model order, and the label.
type Layout struct {
	ID        string   // int64
	Key       string   // int64, or a string when StringKey is set
	StringKey bool     // the schema's key field is a string field
	Features  []string // float32 each
	Label     string   // float64; empty (CSV) or null (Parquet) where no label is known
}

// Columns returns the column names in file order.
func (l Layout) Columns() []string {
	h := []string{l.ID, "tx_datetime", l.Key, "partition", "offset"}
	h = append(h, l.Features...)
	return append(h, l.Label)
}

// Row is one row of an export. Writers read it during WriteRow only, so the
// caller may reuse it, and its Features, for the next row.
type Row struct {
	ID        int64
	Time      time.Time
	KeyInt    int64  // the key when the layout's key is an int
	KeyStr    string // the key when it is a string
	Partition int32
	Offset    int64
	Features  []float32 // as many as the layout has
	Label     float64
	HasLabel  bool // false: no label is known, Label is not written
}

// Writer encodes the rows of an export into one file format. It is not safe for
// concurrent use (the export sink serialises its calls). Rows may
// be held in buffers until Close; the file is complete only once Close has returned nil.
// Close does not close the io.Writer the Writer was made with.
type Writer interface {
	WriteRow(r *Row) error
	Close() error
}

// NewWriterFunc makes a Writer that writes to w; the file starts with
// layout's header (CSV) or is described by it (Parquet).
type NewWriterFunc func(w io.Writer, layout Layout) (Writer, error)

// FormatOf returns the writer for the file format that path's extension names.
func FormatOf(path string) (NewWriterFunc, error) {
	switch ext := filepath.Ext(path); strings.ToLower(ext) {
	case ".csv":
		return NewCSV, nil
	case ".parquet":
		return NewParquet, nil
	default:
		return nil, fmt.Errorf("export file %q: extension %q names no format; end the path in .csv or .parquet", path, ext)
	}
}

// csvWriter writes one line per row, without quoting: ids, keys and column names
// are not expected to hold commas. Floats are written in the shortest form that reads
// back to the same float32 (features) or float64 (labels); times in RFC 3339 with as many
// fraction digits as they have.
type csvWriter struct {
	w         *bufio.Writer
	stringKey bool
	line      []byte // reused between rows
}

// NewCSV makes the CSV Writer.
func NewCSV(w io.Writer, layout Layout) (Writer, error) {
	e := &csvWriter{w: bufio.NewWriterSize(w, 1<<20), stringKey: layout.StringKey}
	e.line = append(e.line, strings.Join(layout.Columns(), ",")...)
	e.line = append(e.line, '\n')
	if _, err := e.w.Write(e.line); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *csvWriter) WriteRow(r *Row) error {
	line := strconv.AppendInt(e.line[:0], r.ID, 10)
	line = append(line, ',')
	line = r.Time.AppendFormat(line, time.RFC3339Nano)
	line = append(line, ',')
	if e.stringKey {
		line = append(line, r.KeyStr...)
	} else {
		line = strconv.AppendInt(line, r.KeyInt, 10)
	}
	line = append(line, ',')
	line = strconv.AppendInt(line, int64(r.Partition), 10)
	line = append(line, ',')
	line = strconv.AppendInt(line, r.Offset, 10)
	for _, x := range r.Features {
		line = append(line, ',')
		line = strconv.AppendFloat(line, float64(x), 'g', -1, 32)
	}
	line = append(line, ',')
	if r.HasLabel {
		line = strconv.AppendFloat(line, r.Label, 'g', -1, 64)
	}
	line = append(line, '\n')
	e.line = line
	_, err := e.w.Write(line)
	return err
}

func (e *csvWriter) Close() error { return e.w.Flush() }

const (
	// parquetBatchRows is how many rows a parquetWriter collects before it hands
	// them to the Parquet writer in one call.
	parquetBatchRows = 1024
	// parquetRowGroupRows bounds a row group. The writer holds a whole row group's
	// compressed pages in memory until it is complete: about 100 bytes a row before
	// compression with the handbook's 15 features.
	parquetRowGroupRows = 1 << 20
)

// parquetWriter writes a Parquet file: the layout's columns in order, all required
// but the label (optional DOUBLE, null where no label is known); ids, keys and offsets
// INT64 (keys STRING when the layout says so), partition INT32, features FLOAT, and the
// event time a TIMESTAMP in microseconds, adjusted to UTC (the unit all readers take;
// sub-microsecond digits, which the CSV keeps, are dropped). Pages are zstd-compressed.
type parquetWriter struct {
	w         *parquet.GenericWriter[any]
	stringKey bool
	columns   int
	batch     []parquet.Row // parquetBatchRows rows of columns values each, reused
	n         int           // rows of batch in use
	keys      []byte        // the string keys of the batch's rows, which its values point into
}

// NewParquet makes the Parquet Writer.
func NewParquet(w io.Writer, layout Layout) (Writer, error) {
	e, err := newParquetGroups(w, layout, parquetRowGroupRows)
	if err != nil {
		return nil, err // not a nil *parquetWriter in a non-nil Writer
	}
	return e, nil
}

// newParquetGroups is NewParquet with row groups of at most rowGroupRows rows.
func newParquetGroups(w io.Writer, layout Layout, rowGroupRows int64) (*parquetWriter, error) {
	key := parquet.Leaf(parquet.Int64Type)
	if layout.StringKey {
		key = parquet.String()
	}
	nodes := []parquet.Node{
		parquet.Leaf(parquet.Int64Type),
		parquet.Timestamp(parquet.Microsecond),
		key,
		parquet.Leaf(parquet.Int32Type),
		parquet.Leaf(parquet.Int64Type),
	}
	for range layout.Features {
		nodes = append(nodes, parquet.Leaf(parquet.FloatType))
	}
	nodes = append(nodes, parquet.Optional(parquet.Leaf(parquet.DoubleType)))
	root, err := newParquetColumns(layout.Columns(), nodes)
	if err != nil {
		return nil, err
	}
	e := &parquetWriter{
		w: parquet.NewGenericWriter[any](w,
			parquet.NewSchema("export", root),
			parquet.Compression(&parquet.Zstd),
			parquet.MaxRowsPerRowGroup(rowGroupRows),
			parquet.WriteBufferSize(1<<20),
			// Version 1 data pages are what every reader reads (and what pyarrow writes).
			parquet.DataPageVersion(1),
		),
		stringKey: layout.StringKey,
		columns:   len(nodes),
		batch:     make([]parquet.Row, parquetBatchRows),
	}
	values := make([]parquet.Value, parquetBatchRows*len(nodes))
	for i := range e.batch {
		e.batch[i] = values[i*len(nodes) : (i+1)*len(nodes) : (i+1)*len(nodes)]
	}
	return e, nil
}

func (e *parquetWriter) WriteRow(r *Row) error {
	if len(r.Features) != e.columns-6 {
		return fmt.Errorf("export row %d has %d features, the file %d", r.ID, len(r.Features), e.columns-6)
	}
	row := e.batch[e.n]
	row[0] = parquet.Int64Value(r.ID).Level(0, 0, 0)
	row[1] = parquet.Int64Value(r.Time.UnixMicro()).Level(0, 0, 1)
	if e.stringKey {
		start := len(e.keys)
		e.keys = append(e.keys, r.KeyStr...)
		row[2] = parquet.ByteArrayValue(e.keys[start:len(e.keys):len(e.keys)]).Level(0, 0, 2)
	} else {
		row[2] = parquet.Int64Value(r.KeyInt).Level(0, 0, 2)
	}
	row[3] = parquet.Int32Value(r.Partition).Level(0, 0, 3)
	row[4] = parquet.Int64Value(r.Offset).Level(0, 0, 4)
	for i, x := range r.Features {
		row[5+i] = parquet.FloatValue(x).Level(0, 0, 5+i)
	}
	if last := e.columns - 1; r.HasLabel {
		row[last] = parquet.DoubleValue(r.Label).Level(0, 1, last)
	} else {
		row[last] = parquet.NullValue().Level(0, 0, last)
	}
	e.n++
	if e.n == len(e.batch) {
		return e.flushBatch()
	}
	return nil
}

// flushBatch hands the batch to the Parquet writer, which copies the values (string
// keys included) into its column buffers.
func (e *parquetWriter) flushBatch() error {
	if e.n == 0 {
		return nil
	}
	_, err := e.w.WriteRows(e.batch[:e.n])
	e.n, e.keys = 0, e.keys[:0]
	if err != nil {
		return fmt.Errorf("writing parquet rows: %w", err)
	}
	return nil
}

func (e *parquetWriter) Close() error {
	if err := e.flushBatch(); err != nil {
		return err
	}
	if err := e.w.Close(); err != nil {
		return fmt.Errorf("closing parquet file: %w", err)
	}
	return nil
}

// parquetColumns is a flat Parquet group that keeps its columns in the order given:
// parquet.Group orders them by name, and the export's are in the order of the CSV.
// Everything but the order (types, the mapping to Go values) is parquet.Group's.
type parquetColumns struct {
	parquet.Group
	ordered []parquet.Field
}

func newParquetColumns(names []string, nodes []parquet.Node) (parquetColumns, error) {
	g := parquetColumns{Group: make(parquet.Group, len(names))}
	for i, name := range names {
		if _, dup := g.Group[name]; dup {
			return parquetColumns{}, fmt.Errorf("export columns: %q is there twice; a feature cannot be named like another column", name)
		}
		g.Group[name] = nodes[i]
	}
	byName := make(map[string]parquet.Field, len(names))
	for _, f := range g.Group.Fields() {
		byName[f.Name()] = f
	}
	for _, name := range names {
		g.ordered = append(g.ordered, byName[name])
	}
	return g, nil
}

func (g parquetColumns) Fields() []parquet.Field { return g.ordered }

func (g parquetColumns) String() string {
	var b strings.Builder
	_ = parquet.PrintSchema(&b, "", g) // a strings.Builder does not fail
	return b.String()
}
