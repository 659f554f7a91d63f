// Package monitor builds a model's drift reference from its training set and reports the
// drift of a stretch of the input log against it, for analysts who do not run Grafana.
// The operator computes the same statistics live (pipeline.DriftConfig); this package is
// the offline side: `streamscore drift reference` and `streamscore drift report`.
package monitor

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
)

// ReferenceOptions select the training rows of a features CSV the way
// testdata/model/train.py does: labelled rows with TrainStart <= tx_datetime <
// TrainStart + TrainDays.
type ReferenceOptions struct {
	TrainStart time.Time
	TrainDays  int
	Bins       int // 0: drift.DefaultBins
	// Source is recorded in the reference: the command that made it.
	Source string
}

// scoreBatch is the rows per scoring call while building a reference.
const scoreBatch = 1024

// ReferenceFromCSV reads a `streamscore features`/`export` CSV, keeps the training rows,
// scores them with m and bins every feature (names, in the model's order) and the score.
func ReferenceFromCSV(r io.Reader, m pipeline.Scorer, names []string, o ReferenceOptions) (*drift.Reference, error) {
	rows, err := trainingRows(r, names, o)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no labelled rows in [%s, +%d days): pick --train-start and --train-days inside the file's time span",
			o.TrainStart.Format(time.DateOnly), o.TrainDays)
	}
	f := len(names)
	scores := make([]float32, len(rows))
	mat := make([]float32, 0, scoreBatch*f)
	var scratch []float32
	for lo := 0; lo < len(rows); lo += scoreBatch {
		hi := min(lo+scoreBatch, len(rows))
		mat = mat[:0]
		for _, row := range rows[lo:hi] {
			mat = append(mat, row...)
		}
		if scratch, err = m.Score(mat, hi-lo, scores[lo:hi], scratch); err != nil {
			return nil, fmt.Errorf("scoring training rows %d to %d: %w", lo, hi, err)
		}
	}
	ref, err := drift.Build(m.Name(), names, rows, scores, o.Bins)
	if err != nil {
		return nil, err
	}
	ref.ModelVersion, ref.Source = m.Version(), o.Source
	return ref, nil
}

func trainingRows(r io.Reader, names []string, o ReferenceOptions) ([][]float32, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	iTime, okT := col["tx_datetime"]
	iLabel, okL := col["TX_FRAUD"]
	if !okT || !okL {
		return nil, errors.New("the CSV needs tx_datetime and TX_FRAUD columns: write it with `streamscore features` or `streamscore export`")
	}
	idx := make([]int, len(names))
	for j, n := range names {
		i, ok := col[n]
		if !ok {
			return nil, fmt.Errorf("the CSV has no column %q of the model's features %v", n, names)
		}
		idx[j] = i
	}
	end := o.TrainStart.AddDate(0, 0, o.TrainDays)
	var rows [][]float32
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339, rec[iTime])
		if err != nil {
			return nil, fmt.Errorf("line %d: tx_datetime: %w", line, err)
		}
		if t.Before(o.TrainStart) || !t.Before(end) || rec[iLabel] == "" {
			continue
		}
		row := make([]float32, len(idx))
		for j, i := range idx {
			v, err := strconv.ParseFloat(rec[i], 32)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", line, names[j], err)
			}
			row[j] = float32(v)
		}
		rows = append(rows, row)
	}
}

// WriteReferenceFile builds the reference of model m from the features CSV at csvPath
// (ReferenceFromCSV) and writes it, indented, to out.
func WriteReferenceFile(csvPath, out string, m pipeline.Scorer, names []string, o ReferenceOptions) (*drift.Reference, error) {
	f, err := os.Open(csvPath)
	if err != nil {
		return nil, fmt.Errorf("reading the training rows: %w", err)
	}
	defer f.Close()
	ref, err := ReferenceFromCSV(f, m, names, o)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(ref, "", " ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("writing the reference: %w", err)
	}
	return ref, nil
}
