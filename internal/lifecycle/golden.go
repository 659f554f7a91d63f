package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// GoldenRows reads the feature vectors of width values out of a golden.jsonl file (one
// {"features":[…],"score":…} per line, as testdata/model/train.py writes them), row-major.
// Blank lines are skipped. A file that cannot be read, a line that is not such an object,
// a row of another width or a file with no rows is an error that names the file and the
// line: validating on rows the user did not mean would prove nothing.
func GoldenRows(path string, width int) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("golden rows %s: %w (give --golden a golden.jsonl that exists, or leave it out to validate on synthetic rows)", path, err)
	}
	var rows []float32
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var g struct {
			Features []float32 `json:"features"`
		}
		if err := json.Unmarshal(line, &g); err != nil {
			return nil, fmt.Errorf(`golden rows %s line %d: %w (want one {"features":[...],"score":...} object per line)`, path, i+1, err)
		}
		if len(g.Features) != width {
			return nil, fmt.Errorf("golden rows %s line %d: %d features, but the feature spec has %d: the rows were made for another feature spec (regenerate them with the model's training script)", path, i+1, len(g.Features), width)
		}
		rows = append(rows, g.Features...)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf(`golden rows %s: no rows (want one {"features":[...],"score":...} object per line)`, path)
	}
	return rows, nil
}

// goldenBeside reads the golden rows that o names or, when it names none, those of
// golden.jsonl in dir; only that default file may be missing (nil rows: synthetic ones).
func goldenBeside(dir string, o BundleOptions) ([]float32, error) {
	if o.Golden != "" {
		return GoldenRows(o.Golden, o.Width)
	}
	beside := filepath.Join(dir, "golden.jsonl")
	if _, err := os.Stat(beside); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return GoldenRows(beside, o.Width)
}
