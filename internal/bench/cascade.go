package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/evaluate"
	"github.com/streamscore/streamscore/scorer"
)

// cascadeBatch is the batch size of stage g's scoring: the pipeline's default batch.max_size.
const cascadeBatch = 512

// cascadeGateShare is the share of rows the gate should pass to the forest: the gate is
// the cheap model's score on the test period whose share of rows at or above it is
// closest to this.
const cascadeGateShare = 0.05

// CascadeResult is stage g: a cascade (the cheap model scores every row; rows at or above
// the gate are rescored by the reference forest, whose score replaces the cheap one)
// against the forest alone, in CPU per event and in quality on the handbook's test period.
type CascadeResult struct {
	Rows          int          `json:"rows"`
	RemovedKnown  int          `json:"removed_known_compromised"`
	Gate          float64      `json:"gate"`
	PassedShare   float64      `json:"passed_share"`
	ForestCPU     float64      `json:"forest_cpu_us_per_event"`
	CascadeCPU    float64      `json:"cascade_cpu_us_per_event"`
	CheapCPU      float64      `json:"cheap_cpu_us_per_event"`
	Forest        QualityPoint `json:"forest"`
	Cascade       QualityPoint `json:"cascade"`
	Cheap         QualityPoint `json:"cheap"`
	FeaturesFile  string       `json:"features_file"`
	CascadeSource string       `json:"cascade_source"`
}

// QualityPoint is one scorer's quality on the test period.
type QualityPoint struct {
	AUC           float64 `json:"auc"`
	AP            float64 `json:"average_precision"`
	CardPrecision float64 `json:"card_precision_at_100"`
}

// cascade is stage g. featuresCSV is the `streamscore features --days 136` file of the
// handbook's periods; when it does not exist it is written first, by the streamscore
// binary (minutes, once).
func (r *runner) cascade(ctx context.Context, cc *config.Compiled) (*CascadeResult, error) {
	forestOpts := cc.ModelOptions()
	periods, err := readPeriods(filepath.Join(filepath.Dir(forestOpts.Path), "metrics.json"))
	if err != nil {
		return nil, err
	}
	if err := r.ensureFeatures(ctx); err != nil {
		return nil, err
	}
	f, err := os.Open(r.plan.Features)
	if err != nil {
		return nil, err
	}
	set, err := readTestSet(f, periods)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.plan.Features, err)
	}
	if set.rows() == 0 {
		return nil, fmt.Errorf("%s: no labelled rows in the test period %s .. %s: write it with `streamscore features --days 136`", r.plan.Features, periods.Test[0], periods.Test[1])
	}
	forest, err := scorer.Open(forestOpts)
	if err != nil {
		return nil, err
	}
	defer forest.Close()
	cheapOpts := forestOpts
	cheapOpts.Path, cheapOpts.Name = r.plan.CheapModel, ""
	cheap, err := scorer.Open(cheapOpts)
	if err != nil {
		return nil, fmt.Errorf("--cheap-model: %w", err)
	}
	defer cheap.Close()
	if cheap.NumFeatures() != set.nf || forest.NumFeatures() != set.nf {
		return nil, fmt.Errorf("the models take %d and %d features, the CSV has %d", cheap.NumFeatures(), forest.NumFeatures(), set.nf)
	}
	return measureCascade(set, cheap, forest, r.plan.Features)
}

// ensureFeatures writes plan.Features with the streamscore binary when it is missing.
func (r *runner) ensureFeatures(ctx context.Context) error {
	if _, err := os.Stat(r.plan.Features); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(r.plan.Features), 0o755); err != nil {
		return err
	}
	r.say("(g) writing %s: `streamscore features --days 136` (once; minutes)", r.plan.Features)
	// renamed when complete; the name keeps the extension that picks the format
	tmp := filepath.Join(filepath.Dir(r.plan.Features), "partial-"+filepath.Base(r.plan.Features))
	cmd := exec.CommandContext(ctx, r.plan.Binary, "features", "--days", "136", "--seed", "1", "--out", tmp, "--log-level", "error")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("streamscore features: %w: %s", err, tail(out, 2000))
	}
	return os.Rename(tmp, r.plan.Features)
}

func measureCascade(set *testSet, cheap, forest *scorer.Model, source string) (*CascadeResult, error) {
	n := set.rows()
	cheapScores, err := scoreAll(cheap, set.features, set.nf, n)
	if err != nil {
		return nil, err
	}
	forestScores, err := scoreAll(forest, set.features, set.nf, n)
	if err != nil {
		return nil, err
	}
	gate := gateFor(cheapScores, cascadeGateShare)
	cascadeScores, passed, err := scoreCascade(cheap, forest, set.features, set.nf, n, gate)
	if err != nil {
		return nil, err
	}
	res := &CascadeResult{
		Rows: n, RemovedKnown: set.removed, Gate: float64(gate), PassedShare: float64(passed) / float64(n), FeaturesFile: source,
		CascadeSource: "the scorer called directly: the cheap model on every row, the forest on the rows at or above the gate, its score replacing the cheap one",
		Forest:        quality(set, forestScores), Cascade: quality(set, cascadeScores), Cheap: quality(set, cheapScores),
	}
	// CPU per event: the median of 5 alternating passes of each.
	var tf, tc, tk []float64
	for range 5 {
		d, err := cpuOf(func() error { _, err := scoreAll(forest, set.features, set.nf, n); return err })
		if err != nil {
			return nil, err
		}
		tf = append(tf, d)
		if d, err = cpuOf(func() error { _, _, err := scoreCascade(cheap, forest, set.features, set.nf, n, gate); return err }); err != nil {
			return nil, err
		}
		tc = append(tc, d)
		if d, err = cpuOf(func() error { _, err := scoreAll(cheap, set.features, set.nf, n); return err }); err != nil {
			return nil, err
		}
		tk = append(tk, d)
	}
	res.ForestCPU, res.CascadeCPU, res.CheapCPU = median(tf)/float64(n), median(tc)/float64(n), median(tk)/float64(n)
	return res, nil
}

// gateFor returns the score, among those of scores, at or above which the share of rows
// is closest to share: the cheap model's scores are few distinct values, so a plain
// quantile may pass many more rows than asked.
func gateFor(scores []float32, share float64) float32 {
	s := slices.Clone(scores)
	slices.Sort(s)
	n := len(s)
	best, bestDiff := s[n-1], 2.0
	for i := 0; i < n; {
		j := i
		for j < n && s[j] == s[i] {
			j++
		}
		if d := math.Abs(float64(n-i)/float64(n) - share); d < bestDiff {
			best, bestDiff = s[i], d
		}
		i = j
	}
	return best
}

// scoreAll scores the n rows in batches of cascadeBatch.
func scoreAll(m *scorer.Model, rows []float32, nf, n int) ([]float32, error) {
	out := make([]float32, n)
	var scratch []float32
	var err error
	for i := 0; i < n; i += cascadeBatch {
		b := min(cascadeBatch, n-i)
		if scratch, err = m.Score(rows[i*nf:(i+b)*nf], b, out[i:i+b], scratch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scoreCascade scores each batch with cheap, then the batch's rows at or above gate with
// forest, whose scores replace the cheap ones.
func scoreCascade(cheap, forest *scorer.Model, rows []float32, nf, n int, gate float32) ([]float32, int, error) {
	out := make([]float32, n)
	sub := make([]float32, 0, cascadeBatch*nf)
	subOut := make([]float32, cascadeBatch)
	idx := make([]int, 0, cascadeBatch)
	var s1, s2 []float32
	var err error
	passed := 0
	for i := 0; i < n; i += cascadeBatch {
		b := min(cascadeBatch, n-i)
		if s1, err = cheap.Score(rows[i*nf:(i+b)*nf], b, out[i:i+b], s1); err != nil {
			return nil, 0, err
		}
		sub, idx = sub[:0], idx[:0]
		for j := i; j < i+b; j++ {
			if out[j] >= gate {
				sub = append(sub, rows[j*nf:(j+1)*nf]...)
				idx = append(idx, j)
			}
		}
		if len(idx) == 0 {
			continue
		}
		if s2, err = forest.Score(sub, len(idx), subOut, s2); err != nil {
			return nil, 0, err
		}
		for k, j := range idx {
			out[j] = subOut[k]
		}
		passed += len(idx)
	}
	return out, passed, nil
}

func quality(set *testSet, scores []float32) QualityPoint {
	rows := make([]evaluate.Scored, len(scores))
	cards := make([]evaluate.CardRow, len(scores))
	for i, s := range scores {
		rows[i] = evaluate.Scored{Score: float64(s), Fraud: set.fraud[i]}
		cards[i] = evaluate.CardRow{Day: set.day[i], Card: set.card[i], Score: float64(s), Fraud: set.fraud[i]}
	}
	var q QualityPoint
	q.AUC, _ = evaluate.AUC(rows)
	q.AP, _ = evaluate.AveragePrecision(rows)
	q.CardPrecision, _ = evaluate.CardPrecisionAtK(cards, 100)
	return q
}

// cpuOf returns the user and system CPU time of this process, in µs, that fn used.
func cpuOf(fn func() error) (float64, error) {
	before, err := processCPU()
	if err != nil {
		return 0, err
	}
	if err := fn(); err != nil {
		return 0, err
	}
	after, err := processCPU()
	if err != nil {
		return 0, err
	}
	return float64((after - before).Microseconds()), nil
}

func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// printCascade writes stage g's lines.
func printCascade(w io.Writer, c *CascadeResult) {
	if c == nil {
		return
	}
	fmt.Fprintf(w, "(g) handbook test period: %d labelled rows (%d of known compromised cards removed)\tgate %.4f passes %.2f%% of rows to the forest\n",
		c.Rows, c.RemovedKnown, c.Gate, 100*c.PassedShare)
	for _, q := range []struct {
		name string
		cpu  float64
		q    QualityPoint
	}{{"forest alone", c.ForestCPU, c.Forest}, {"cascade (cheap, then forest at >= gate)", c.CascadeCPU, c.Cascade}, {"cheap model alone", c.CheapCPU, c.Cheap}} {
		fmt.Fprintf(w, "    %s\t%.2f CPU us/event; AUC %.4f, AP %.4f, card precision@100 %.4f\n", q.name, q.cpu, q.q.AUC, q.q.AP, q.q.CardPrecision)
	}
}
