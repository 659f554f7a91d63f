package pipeline

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/record"
)

// ExplainConfig turns on reason codes: every row whose score reaches the threshold (the
// rows that alert), and every row whose record asks (HeaderExplain), gets the TreeSHAP contributions of its features, computed after
// scoring in the same batch. Its prediction, and so its alert, carries the TopK largest
// by absolute value ("reasons"), the base value, and the sum of the others, so that
// base_value + Σ reasons + other_contribution is the score. A backfill, which writes no
// alerts, writes the same reasons into the same predictions, bit for bit.
type ExplainConfig struct {
	Enabled bool
	TopK    int // default 5
}

// Explainer is what a Scorer offers when it can explain its scores (scorer.Model of a
// tree ensemble with node covers). The operator finds it by a type assertion, so scorers
// that cannot explain need not implement it.
type Explainer interface {
	// ExplainStatus is "" when Explain works, else why not, for a log line.
	ExplainStatus() string
	// Explain writes each feature's contribution to x's score into phi and returns the
	// base value; deterministic, independent of other rows.
	Explain(x []float32, phi []float64) (base float64, err error)
}

// Reason is one entry of a prediction's "reasons".
type Reason struct {
	Feature      string  `json:"feature"`
	Value        float32 `json:"value"`
	Contribution float64 `json:"contribution"`
}

// explainState is the batcher goroutine's explanation scratch; the versions it has
// said it cannot explain, so that the log says it once each.
type explainState struct {
	phi   []float64
	order []int
	said  map[string]bool
}

// appendReasons replaces the closing brace of the prediction JSON ending vals by the
// row's explanation when m explains; otherwise it returns vals as they are, and logs once
// per version why alerts carry no reasons.
func (o *Operator) appendReasons(vals []byte, m Scorer, feat []float32) []byte {
	ex, ok := m.(Explainer)
	why := "the scorer does not explain its scores"
	if ok {
		why = ex.ExplainStatus()
	}
	if why != "" {
		o.sayNoReasons(m, why)
		return vals
	}
	s := &o.ex
	if len(s.phi) < len(feat) {
		s.phi, s.order = make([]float64, len(feat)), make([]int, len(feat))
	}
	phi := s.phi[:len(feat)]
	base, err := ex.Explain(feat, phi)
	if err != nil {
		o.sayNoReasons(m, err.Error())
		return vals
	}
	order := s.order[:len(feat)]
	for i := range order {
		order[i] = i
	}
	// Largest |contribution| first; ties by feature position, so the order is a
	// function of the contributions alone.
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(math.Abs(phi[b]), math.Abs(phi[a])) })
	k := min(o.topK(), len(order))
	other := 0.0
	for _, i := range order[k:] {
		other += phi[i]
	}
	names := o.cfg.Features.Features
	vals = vals[:len(vals)-1] // the prediction's closing brace
	vals = append(vals, `,"base_value":`...)
	vals = strconv.AppendFloat(vals, base, 'g', -1, 64)
	vals = append(vals, `,"reasons":[`...)
	for j, i := range order[:k] {
		if j > 0 {
			vals = append(vals, ',')
		}
		vals = append(vals, `{"feature":`...)
		vals = appendJSONString(vals, []byte(names[i].Name))
		vals = append(vals, `,"value":`...)
		vals = appendFloat32JSON(vals, feat[i])
		vals = append(vals, `,"contribution":`...)
		vals = strconv.AppendFloat(vals, phi[i], 'g', -1, 64)
		vals = append(vals, '}')
	}
	vals = append(vals, `],"other_contribution":`...)
	vals = strconv.AppendFloat(vals, other, 'g', -1, 64)
	return append(vals, '}')
}

// appendFloat32JSON writes x as the shortest decimal that parses back to it; JSON has no
// NaN or infinities, so those are written as null.
func appendFloat32JSON(dst []byte, x float32) []byte {
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, float64(x), 'g', -1, 32)
}

func (o *Operator) topK() int {
	if o.cfg.Explain.TopK > 0 {
		return o.cfg.Explain.TopK
	}
	return 5
}

func (o *Operator) sayNoReasons(m Scorer, why string) {
	key := m.Name() + "@" + m.Version()
	if o.ex.said[key] {
		return
	}
	if o.ex.said == nil {
		o.ex.said = map[string]bool{}
	}
	o.ex.said[key] = true
	o.log.Warn("alerts of this model carry no reasons", zap.String("model", m.Name()), zap.String("version", m.Version()), zap.String("why", why))
}

// HeaderExplain on an input record asks for its explanation whatever its score (POST
// /v1/events?explain=true writes it). It is in the log, so a backfill explains the same
// rows.
const HeaderExplain = "streamscore.explain"

// explains reports whether the row of rec with this score gets reasons.
func (o *Operator) explains(score float32, rec *Record) bool {
	if !o.cfg.Explain.Enabled {
		return false
	}
	return score >= o.cfg.Threshold || string(record.HeaderValue(rec.Headers, HeaderExplain)) == "true"
}
