package lifecycle

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/scorer/treeshap"
	"github.com/streamscore/streamscore/topics"
)

// CoversReport says what CoversFrom counted.
type CoversReport struct {
	Rows, Skipped int64  // rows counted; rows outside the model's training period
	Period        string // the model's train_period metadata, when it has one
}

// CoversFrom counts the node covers of the tree-ensemble model raw from a training
// export (a CSV or Parquet file as `streamscore export` writes them): every row passes
// down every tree. Feature columns are found by the model's feature_names metadata, else
// by features (the feature spec's names). When the model names its train_period (as
// testdata/model/train.py writes it) and the file has tx_datetime, only rows in that
// period count, so a whole export gives the covers of the rows the model was trained on.
func CoversFrom(path string, raw []byte, scoreCol int, features []string) (treeshap.Covers, CoversReport, error) {
	e, err := treeshap.Parse(raw, scoreCol)
	if err != nil {
		return treeshap.Covers{}, CoversReport{}, fmt.Errorf("the model's trees: %w", err)
	}
	if names := e.FeatureNames(); names != nil {
		features = names
	}
	rep := CoversReport{Period: e.Metadata("train_period")}
	lo, hi, err := parsePeriod(rep.Period)
	if err != nil {
		return treeshap.Covers{}, rep, err
	}
	cc := treeshap.NewCoverCounter(e)
	add := func(x []float32, t time.Time, hasTime bool) error {
		if hasTime && !lo.IsZero() && (t.Before(lo) || !t.Before(hi)) {
			rep.Skipped++
			return nil
		}
		rep.Rows++
		return cc.Add(x)
	}
	if strings.HasSuffix(strings.ToLower(path), ".parquet") {
		err = readParquetRows(path, features, add)
	} else {
		err = readCSVRows(path, features, add)
	}
	if err != nil {
		return treeshap.Covers{}, rep, fmt.Errorf("%s: %w", path, err)
	}
	if rep.Rows == 0 {
		return treeshap.Covers{}, rep, fmt.Errorf("%s has no row in the model's training period %s: pass the export of the rows it was trained on", path, rep.Period)
	}
	return cc.Covers(scorer.Version(raw)), rep, nil
}

func parsePeriod(p string) (lo, hi time.Time, err error) {
	if p == "" {
		return
	}
	a, b, ok := strings.Cut(p, "/")
	if ok {
		if lo, err = time.Parse(time.RFC3339, a); err == nil {
			hi, err = time.Parse(time.RFC3339, b)
		}
	}
	if !ok || err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("the model's train_period %q is not START/END in RFC 3339", p)
	}
	return lo, hi, nil
}

// columnsOf finds each wanted name in header, and tx_datetime (-1 when absent).
// labelColumn is the label column of an export: a row without a label was not a
// training row (train.py skips it).
const labelColumn = "TX_FRAUD"

func columnsOf(header, want []string) (cols []int, timeCol, labelCol int, err error) {
	at := map[string]int{}
	for i, h := range header {
		at[h] = i
	}
	var missing []string
	for _, w := range want {
		i, ok := at[w]
		if !ok {
			missing = append(missing, w)
		}
		cols = append(cols, i)
	}
	if missing != nil {
		return nil, 0, 0, fmt.Errorf("no column %s: covers need the model's feature columns (a `streamscore export` file)", strings.Join(missing, ", "))
	}
	timeCol = -1
	if i, ok := at["tx_datetime"]; ok {
		timeCol = i
	}
	labelCol = -1
	if i, ok := at[labelColumn]; ok {
		labelCol = i
	}
	return cols, timeCol, labelCol, nil
}

func readCSVRows(path string, features []string, add func([]float32, time.Time, bool) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("reading the header: %w", err)
	}
	cols, timeCol, labelCol, err := columnsOf(append([]string(nil), header...), features)
	if err != nil {
		return err
	}
	x := make([]float32, len(features))
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if labelCol >= 0 && rec[labelCol] == "" {
			continue
		}
		for j, c := range cols {
			v, err := strconv.ParseFloat(rec[c], 32)
			if err != nil {
				return fmt.Errorf("line %d, column %s: %w", line, features[j], err)
			}
			x[j] = float32(v)
		}
		var t time.Time
		if timeCol >= 0 {
			if t, err = time.Parse(time.RFC3339Nano, rec[timeCol]); err != nil {
				return fmt.Errorf("line %d, tx_datetime: %w", line, err)
			}
		}
		if err := add(x, t, timeCol >= 0); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

func readParquetRows(path string, features []string, add func([]float32, time.Time, bool) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return err
	}
	var header []string
	for _, c := range pf.Schema().Columns() {
		header = append(header, strings.Join(c, "."))
	}
	cols, timeCol, labelCol, err := columnsOf(header, features)
	if err != nil {
		return err
	}
	x := make([]float32, len(features))
	buf := make([]parquet.Row, 256)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				if labelCol >= 0 && row[labelCol].IsNull() {
					continue
				}
				for j, c := range cols {
					x[j] = float32(row[c].Double())
					if row[c].Kind() == parquet.Float {
						x[j] = row[c].Float()
					}
				}
				var t time.Time
				if timeCol >= 0 {
					t = time.UnixMicro(row[timeCol].Int64()).UTC()
				}
				if err := add(x, t, timeCol >= 0); err != nil {
					_ = rows.Close()
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				_ = rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

// coversOf returns the covers a push ships: from o.Covers, else the model's metadata,
// else covers.json beside the model file when present and for this version; nil for "none" and for a model that is not a tree ensemble
// when no file was named.
func coversOf(path string, raw []byte, o BundleOptions) (json.RawMessage, error) {
	file := o.Covers
	if file == "none" {
		return nil, nil
	}
	if file == "" {
		e, err := treeshap.Parse(raw, ScoreColumn(o.Model))
		var nt *treeshap.NotTreeEnsembleError
		if errors.As(err, &nt) {
			return nil, nil
		}
		if err == nil && e.HasCovers() {
			// The model's metadata has them (train.py): copied, so that `model list`
			// knows without reading the model.
			return json.RawMessage(e.Metadata(treeshap.MetadataKey)), nil
		}
		beside := filepath.Join(filepath.Dir(path), scorer.CoversFile)
		if !fileExists(beside) {
			return nil, nil
		}
		if b, err := os.ReadFile(beside); err == nil {
			if c, err := treeshap.ParseCovers(b); err == nil && c.ModelVersion != "" && c.ModelVersion != scorer.Version(raw) {
				return nil, nil // another version's covers: this one ships without
			}
		}
		file = beside
	}
	return coversManifest(file, raw, o)
}

// coversManifest reads a covers file for a push: a .json file of covers as
// `streamscore model covers` writes them, or a training export to count them from.
func coversManifest(path string, raw []byte, o BundleOptions) (json.RawMessage, error) {
	lower := strings.ToLower(path)
	if strings.HasSuffix(lower, ".csv") || strings.HasSuffix(lower, ".parquet") {
		c, _, err := CoversFrom(path, raw, ScoreColumn(o.Model), o.Features)
		if err != nil {
			return nil, err
		}
		return json.Marshal(c)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := treeshap.ParseCovers(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if v := scorer.Version(raw); c.ModelVersion != "" && c.ModelVersion != v {
		return nil, fmt.Errorf("%s holds the covers of version %s, not %s: count them with --covers-from TRAINING.csv", path, c.ModelVersion, v)
	}
	e, err := treeshap.Parse(raw, ScoreColumn(o.Model))
	if err != nil {
		return nil, err
	}
	if err := e.SetCovers(c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return json.Marshal(c)
}

// ScoreColumn is the column treeshap.Parse explains for the model options: the scorer's
// score column, or the last one by default.
func ScoreColumn(o scorer.Options) int {
	if o.ScoreColumn != 0 {
		return o.ScoreColumn
	}
	return -1
}

// loadCovers gives m the covers meta's manifest carries, if any.
func loadCovers(meta topics.ModelMeta, m *scorer.Model) error {
	if len(meta.Manifest) == 0 {
		return nil
	}
	var mf Manifest
	if err := json.Unmarshal(meta.Manifest, &mf); err != nil {
		return fmt.Errorf("manifest of %s@%s: %w", meta.Name, meta.Version, err)
	}
	if len(mf.Covers) == 0 {
		return nil
	}
	c, err := treeshap.ParseCovers(mf.Covers)
	if err != nil {
		return fmt.Errorf("manifest of %s@%s: %w", meta.Name, meta.Version, err)
	}
	return m.SetCovers(c)
}

// HasCovers reports whether meta's manifest ships node covers.
func HasCovers(meta topics.ModelMeta) bool {
	var mf Manifest
	return len(meta.Manifest) > 0 && json.Unmarshal(meta.Manifest, &mf) == nil && len(mf.Covers) > 0
}
