package scorer

import (
	"errors"
	"fmt"
	"math"
)

// The classes of validation failure; a *ValidationError unwraps to one of them.
var (
	ErrWidth          = errors.New("model input width differs from the feature spec")
	ErrScores         = errors.New("model scores are not finite probabilities")
	ErrBatchDependent = errors.New("model scores depend on the batch size")
)

// ValidationError is a model that Validate refused: Kind is one of ErrWidth, ErrScores or
// ErrBatchDependent, and the message says what was seen and what to do about it.
type ValidationError struct {
	Kind   error
	Detail string
}

func (e *ValidationError) Error() string { return e.Detail }
func (e *ValidationError) Unwrap() error { return e.Kind }

// validationBatches are the batch sizes whose scores Validate compares bit for bit: one
// row (the micro-batcher at low load), a small odd size, and a full batch.
var validationBatches = [...]int{1, 7, 256}

// minValidationRows is how many rows Validate scores at least: more than two full batches
// of 256 with a remainder, so that every batch size also meets a partial last batch.
const minValidationRows = 600

// Validate checks, before a model is stored or activated, what scoring relies on but
// loading does not prove: the model takes width features per row (the feature spec's
// width); its scores are finite and in [0, 1]; and a row's score does not depend on the
// rows batched with it, so that live scoring, whose batches follow the load, and backfills
// give bit-identical scores. rows holds sample feature rows, row-major (golden rows,
// ideally); when there are fewer than 600 it adds deterministic synthetic rows (columns
// resampled from the given rows, or uniform values when none are given), so it needs no
// rows at all. Each row is scored in batches of 1, 7 and 256 and the three scores must
// agree bit for bit. The failure is a *ValidationError.
//
// Validate only scores m; it is safe to call while nothing else closes m.
func Validate(m *Model, width int, rows []float32) error {
	if m.NumFeatures() != width {
		return &ValidationError{Kind: ErrWidth, Detail: fmt.Sprintf(
			"model takes %d inputs but the feature spec has %d: retrain on the spec's features "+
				"or fix features: in the config so that both agree", m.NumFeatures(), width)}
	}
	if width <= 0 {
		return fmt.Errorf("validating model %s: feature width %d: want at least 1", m.Name(), width)
	}
	if len(rows)%width != 0 {
		return fmt.Errorf("validating model %s: %d sample values are not whole rows of %d features", m.Name(), len(rows), width)
	}
	given := len(rows) / width
	x := withSynthetic(rows, width, minValidationRows)
	n := len(x) / width
	source := func(i int) string {
		if i < given {
			return fmt.Sprintf("sample row %d", i)
		}
		return fmt.Sprintf("synthetic row %d", i-given)
	}

	var scores [len(validationBatches)][]float32
	for k, b := range validationBatches {
		out, err := scoreInBatches(m, x, n, b)
		if err != nil {
			return fmt.Errorf("validating model %s: scoring in batches of %d: %w", m.Name(), b, err)
		}
		scores[k] = out
	}
	ref := scores[len(scores)-1]
	for i, s := range ref {
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) || s < 0 || s > 1 {
			return &ValidationError{Kind: ErrScores, Detail: fmt.Sprintf(
				"model scores %v for %s %v: scores must be probabilities in [0, 1]; export the "+
					"probability output (with its sigmoid or softmax), not raw logits or a regression, "+
					"and check that the model was trained on these features", s, source(i), x[i*width:(i+1)*width])}
		}
	}
	for k, b := range validationBatches[:len(validationBatches)-1] {
		for i, s := range scores[k] {
			if math.Float32bits(s) != math.Float32bits(ref[i]) {
				return &ValidationError{Kind: ErrBatchDependent, Detail: fmt.Sprintf(
					"model scores %[2]v for %[1]s in batches of %[3]d but %[4]v in batches of %[5]d: a row's score must not "+
						"depend on the rows scored with it (live batches follow the load, so live and backfill "+
						"scores would differ); remove batch-wide operations such as batch normalisation in "+
						"training mode or means over the batch axis, and export again",
					source(i), s, b, ref[i], validationBatches[len(validationBatches)-1])}
			}
		}
	}
	return nil
}

func scoreInBatches(m *Model, x []float32, n, batch int) ([]float32, error) {
	w := m.NumFeatures()
	out := make([]float32, n)
	var scratch []float32
	var err error
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		if scratch, err = m.Score(x[i*w:(i+k)*w], k, out[i:i+k], scratch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withSynthetic returns rows followed by synthetic rows up to at least want rows. A
// synthetic row takes each column from a random sample row, which keeps values near the
// range the model sees in production; every other synthetic row also scales each value
// by a random factor in [0.5, 1.5), so that even one sample row gives varied rows (a
// batch of identical rows hides batch dependence). Without sample rows, values are
// uniform in [0, 1), [0, 10) or [0, 100) by row. The generator has a fixed seed: the same model and
// rows always validate the same way.
func withSynthetic(rows []float32, width, want int) []float32 {
	given := len(rows) / width
	if given >= want {
		return rows
	}
	x := make([]float32, 0, want*width)
	x = append(x, rows...)
	s := uint64(0x853c49e6748fea9b)
	next := func() uint64 {
		s ^= s >> 12
		s ^= s << 25
		s ^= s >> 27
		return s * 0x2545f4914f6cdd1d
	}
	for r := given; r < want; r++ {
		scale := [...]float32{1, 10, 100}[r%3]
		for c := 0; c < width; c++ {
			if given > 0 {
				v := rows[int(next()%uint64(given))*width+c]
				if r%2 == 1 {
					v *= 0.5 + float32(next()>>40)/(1<<24)
				}
				x = append(x, v)
			} else {
				x = append(x, scale*float32(next()>>40)/(1<<24))
			}
		}
	}
	return x
}
