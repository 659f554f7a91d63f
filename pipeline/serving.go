package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// ExperimentArm is a prediction's "experiment" member.
type ExperimentArm struct {
	Name string `json:"name"`
	Arm  string `json:"arm"` // control or treatment
}

// MemberScore is one version's score of a row.
type MemberScore struct {
	Version string  `json:"version"`
	Score   float32 `json:"score"`
}

// EnsembleScores is a prediction's "ensemble" member: the combiner and each member's
// score, in member order.
type EnsembleScores struct {
	Combine string        `json:"combine"`
	Members []MemberScore `json:"members"`
}

// CascadeStages is a prediction's "cascade" member: the gate, the stage that decided (1:
// the first version's score was below the gate; 2: the second version scored the row)
// and the scores of the stages that ran, in order.
type CascadeStages struct {
	Gate   float64       `json:"gate"`
	Stage  int           `json:"stage"`
	Scores []MemberScore `json:"scores"`
}

// Combiners of NewEnsemble.
const (
	CombineMean     = "mean"
	CombineMax      = "max"
	CombineWeighted = "weighted"
)

// Ensemble is a Scorer that scores every row with each member, once per Score call, and
// combines their scores: mean and weighted mean accumulate in float64 in member order
// (Σ wᵢsᵢ / Σ wᵢ, all weights 1 for mean) and round the result to float32 once; max
// is exact. Not safe for concurrent use: the operator's batcher goroutine is its only
// caller, and AppendFields reads the last Score call.
type Ensemble struct {
	name, version, combine string
	members                []Scorer
	weights                []float64
	wsum                   float64
	scores                 [][]float32 // per member, the last call's scores
	prefix                 []byte
}

// NewEnsemble combines members (at least two, of one width) with combine; weights, for
// CombineWeighted only, are positive, one per member.
func NewEnsemble(name, combine string, members []Scorer, weights []float64) (*Ensemble, error) {
	if len(members) < 2 {
		return nil, errors.New("an ensemble needs at least two members")
	}
	e := &Ensemble{name: name, combine: combine, members: members, scores: make([][]float32, len(members))}
	switch combine {
	case CombineMean:
	case CombineMax:
	case CombineWeighted:
		if len(weights) != len(members) {
			return nil, fmt.Errorf("a weighted ensemble of %d members needs %d weights, not %d", len(members), len(members), len(weights))
		}
		e.weights = weights
	default:
		return nil, fmt.Errorf("combiner %q: want mean, max or weighted", combine)
	}
	for _, w := range weights {
		if !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("weight %v: want a positive number", w)
		}
		e.wsum += w
	}
	e.version = combine + "("
	for i, m := range members {
		if m.NumFeatures() != members[0].NumFeatures() {
			return nil, fmt.Errorf("members %s (%d inputs) and %s (%d inputs) differ in width", members[0].Version(), members[0].NumFeatures(), m.Version(), m.NumFeatures())
		}
		if i > 0 {
			e.version += ","
		}
		e.version += m.Version()
	}
	e.version += ")"
	e.prefix = append(appendJSONString([]byte(`,"ensemble":{"combine":`), []byte(combine)), `,"members":[`...)
	return e, nil
}

// Score implements Scorer.
func (e *Ensemble) Score(features []float32, n int, out []float32, scratch []float32) ([]float32, error) {
	for j, m := range e.members {
		if cap(e.scores[j]) < n {
			e.scores[j] = make([]float32, n)
		}
		e.scores[j] = e.scores[j][:n]
		var err error
		if scratch, err = m.Score(features, n, e.scores[j], scratch); err != nil {
			return scratch, fmt.Errorf("ensemble member %s: %w", m.Version(), err)
		}
	}
	for i := 0; i < n; i++ {
		out[i] = e.combineRow(i)
	}
	return scratch, nil
}

func (e *Ensemble) combineRow(i int) float32 {
	switch e.combine {
	case CombineMax:
		s := e.scores[0][i]
		for _, ms := range e.scores[1:] {
			s = max(s, ms[i])
		}
		return s
	case CombineWeighted:
		var acc float64
		for j, ms := range e.scores {
			acc += e.weights[j] * float64(ms[i])
		}
		return float32(acc / e.wsum)
	}
	var acc float64
	for _, ms := range e.scores {
		acc += float64(ms[i])
	}
	return float32(acc / float64(len(e.scores)))
}

// AppendFields implements Annotated: the members' scores of row i.
func (e *Ensemble) AppendFields(dst []byte, i int) []byte {
	dst = append(dst, e.prefix...)
	for j, m := range e.members {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = appendMemberScore(dst, m.Version(), e.scores[j][i])
	}
	return append(dst, "]}"...)
}

func appendMemberScore(dst []byte, version string, score float32) []byte {
	dst = append(dst, `{"version":`...)
	dst = appendJSONString(dst, []byte(version))
	dst = append(dst, `,"score":`...)
	dst = strconv.AppendFloat(dst, float64(score), 'g', -1, 32)
	return append(dst, '}')
}

// NumFeatures implements Scorer.
func (e *Ensemble) NumFeatures() int { return e.members[0].NumFeatures() }

// Name implements Scorer.
func (e *Ensemble) Name() string { return e.name }

// Version is the combiner and the members, e.g. mean(3f2a9c1e,77aa0b12): the version
// the prediction's model.version and header carry.
func (e *Ensemble) Version() string { return e.version }

// Cascade is a Scorer that scores every row with its first version and, in one more
// call, the rows whose first score is at or above the gate with its second, whose score
// they take. Not safe for concurrent use, like Ensemble.
type Cascade struct {
	name, version string
	first, second Scorer
	gate          float64
	stage         []uint8   // the last call's deciding stage per row
	firstScores   []float32 // the last call's first-stage scores
	secondScores  []float32 // by row, valid where stage is 2
	sub           []float32 // the rows the second stage scores
	subIdx        []int
	subOut        []float32
	rows          [2]prometheus.Counter // rows decided per stage; nil: not counted
	prefix        []byte
}

// NewCascade gates second behind first at gate (0 ≤ gate ≤ 1); rows, when not nil,
// count the rows each stage decided (first, second).
func NewCascade(name string, first, second Scorer, gate float64, rows [2]prometheus.Counter) (*Cascade, error) {
	if !(gate >= 0 && gate <= 1) {
		return nil, fmt.Errorf("gate %v: want a score in [0, 1]", gate)
	}
	if first.NumFeatures() != second.NumFeatures() {
		return nil, fmt.Errorf("stages %s (%d inputs) and %s (%d inputs) differ in width", first.Version(), first.NumFeatures(), second.Version(), second.NumFeatures())
	}
	g := strconv.FormatFloat(gate, 'g', -1, 64)
	c := &Cascade{name: name, first: first, second: second, gate: gate, rows: rows,
		version: "cascade(" + first.Version() + ">=" + g + ":" + second.Version() + ")"}
	c.prefix = append([]byte(`,"cascade":{"gate":`), g...)
	return c, nil
}

// Score implements Scorer.
func (c *Cascade) Score(features []float32, n int, out []float32, scratch []float32) ([]float32, error) {
	var err error
	if scratch, err = c.first.Score(features, n, out, scratch); err != nil {
		return scratch, fmt.Errorf("cascade stage 1 %s: %w", c.first.Version(), err)
	}
	f := c.first.NumFeatures()
	c.stage = growU8(c.stage, n)
	c.firstScores = append(c.firstScores[:0], out[:n]...)
	c.secondScores = growF32(c.secondScores, n)
	c.sub, c.subIdx = c.sub[:0], c.subIdx[:0]
	for i := 0; i < n; i++ {
		c.stage[i] = 1
		if float64(out[i]) >= c.gate {
			c.stage[i] = 2
			c.subIdx = append(c.subIdx, i)
			c.sub = append(c.sub, features[i*f:(i+1)*f]...)
		}
	}
	k := len(c.subIdx)
	if c.rows[0] != nil {
		c.rows[0].Add(float64(n - k))
		c.rows[1].Add(float64(k))
	}
	if k == 0 {
		return scratch, nil
	}
	c.subOut = growF32(c.subOut, k)
	if scratch, err = c.second.Score(c.sub, k, c.subOut, scratch); err != nil {
		return scratch, fmt.Errorf("cascade stage 2 %s: %w", c.second.Version(), err)
	}
	for j, i := range c.subIdx {
		out[i] = c.subOut[j]
		c.secondScores[i] = c.subOut[j]
	}
	return scratch, nil
}

func growU8(b []uint8, n int) []uint8 {
	if cap(b) < n {
		return make([]uint8, n)
	}
	return b[:n]
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// AppendFields implements Annotated: the gate, the deciding stage and the stages' scores
// of row i.
func (c *Cascade) AppendFields(dst []byte, i int) []byte {
	dst = append(dst, c.prefix...)
	dst = append(dst, `,"stage":`...)
	dst = strconv.AppendInt(dst, int64(c.stage[i]), 10)
	dst = append(dst, `,"scores":[`...)
	dst = appendMemberScore(dst, c.first.Version(), c.firstScores[i])
	if c.stage[i] == 2 {
		dst = append(dst, ',')
		dst = appendMemberScore(dst, c.second.Version(), c.secondScores[i])
	}
	return append(dst, "]}"...)
}

// NumFeatures implements Scorer.
func (c *Cascade) NumFeatures() int { return c.first.NumFeatures() }

// Name implements Scorer.
func (c *Cascade) Name() string { return c.name }

// Version is the stages and the gate, e.g. cascade(77aa0b12>=0.3:3f2a9c1e).
func (c *Cascade) Version() string { return c.version }
