package pipeline

// FeaturesOnly is a Scorer for drivers that want the features and not the scores (export,
// which must work before a model for a new feature spec exists): every score is 0.
type FeaturesOnly struct{ N int }

// Score implements Scorer.
func (f FeaturesOnly) Score(_ []float32, n int, out []float32, scratch []float32) ([]float32, error) {
	clear(out[:n])
	return scratch, nil
}

// NumFeatures implements Scorer.
func (f FeaturesOnly) NumFeatures() int { return f.N }

// Name implements Scorer.
func (f FeaturesOnly) Name() string { return "features-only" }

// Version implements Scorer.
func (f FeaturesOnly) Version() string { return "none" }
