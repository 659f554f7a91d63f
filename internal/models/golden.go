package models

import (
	"bytes"
	"encoding/json"
	"os"
)

// GoldenRows reads the feature vectors of width values out of a golden.jsonl file (one
// {"features":[…],"score":…} per line, as testdata/model/train.py writes them), row-major.
// A missing file, or a line of another shape, gives no rows: callers fall back to
// synthetic ones.
func GoldenRows(path string, width int) []float32 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var rows []float32
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var g struct {
			Features []float32 `json:"features"`
		}
		if json.Unmarshal(line, &g) == nil && len(g.Features) == width {
			rows = append(rows, g.Features...)
		}
	}
	return rows
}
