package bench

import (
	"path/filepath"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
)

// scoringRows is the number of model inputs stage b scores, and its largest batch.
const scoringRows = 4096

// scoringCeiling is stage b: ONNX Runtime alone, in this process, on pre-built batches of
// 1 to 4096 rows, each size for 300ms.
func scoringCeiling(cc *config.Compiled) ([]ScoringPoint, error) {
	model, err := scorer.Open(cc.ModelOptions())
	if err != nil {
		return nil, err
	}
	defer model.Close()
	f := model.NumFeatures()
	rows, err := scoringInputs(cc, f)
	if err != nil {
		return nil, err
	}
	out := make([]float32, scoringRows)
	var pts []ScoringPoint
	for b := 1; b <= scoringRows; b *= 2 {
		var scratch []float32
		calls := 0
		start := time.Now()
		for time.Since(start) < 300*time.Millisecond {
			if scratch, err = model.Score(rows, b, out, scratch); err != nil {
				return nil, err
			}
			calls++
		}
		el := time.Since(start)
		pts = append(pts, ScoringPoint{Batch: b, RowsPerSecond: float64(calls*b) / el.Seconds(), MicrosPerCall: float64(el.Microseconds()) / float64(calls)})
	}
	return pts, nil
}

// scoringInputs returns 4096 realistic model inputs of f features: the rows of golden.jsonl
// beside the model (test-period rows with their window features), repeated; without one,
// the stateless features of simulated events (window columns left 0).
func scoringInputs(cc *config.Compiled, f int) ([]float32, error) {
	rows := make([]float32, scoringRows*f)
	if golden := goldenFeatures(filepath.Join(filepath.Dir(cc.Resolve(cc.Model.Path)), "golden.jsonl"), f); len(golden) > 0 {
		for i := 0; i < scoringRows; i++ {
			copy(rows[i*f:], golden[i%len(golden)])
		}
		return rows, nil
	}
	gen := sim.New(sim.Config{Seed: 3})
	dec := pipeline.NewDecoder(cc.Schema)
	ev := dec.NewEvent()
	for i := 0; i < scoringRows; i++ {
		tx := gen.Next()
		if err := dec.Decode(tx.AppendEvent(nil), time.Time{}, ev); err != nil {
			return nil, err
		}
		if err := cc.Features.Extract(ev, rows[i*f:]); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// goldenFeatures reads the feature vectors of f values out of a golden.jsonl file; a
// missing or malformed file gives none, and the bench scores synthetic rows instead.
func goldenFeatures(path string, f int) [][]float32 {
	flat, err := lifecycle.GoldenRows(path, f)
	if err != nil {
		return nil
	}
	golden := make([][]float32, 0, len(flat)/max(f, 1))
	for i := 0; i+f <= len(flat) && f > 0; i += f {
		golden = append(golden, flat[i:i+f])
	}
	return golden
}
