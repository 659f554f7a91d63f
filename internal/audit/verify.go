package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// PredictionSet is one side of an audit: the score of each input record.
type PredictionSet struct {
	Name        string
	Scores      map[Key]float32
	Features    map[Key][]float32 // when the predictions carry them
	Versions    map[Key]string    // the model version that scored each
	Reasons     map[Key]string    // the explanation of alerting rows (reasonsText)
	Duplicates  int64             // extra predictions for an input that already had one
	Conflicting int64             // duplicates whose score differs from the first
	DeadLetters int64
}

// Report is the comparison of two prediction streams joined on the input record each
// prediction is for.
type Report struct {
	A, B        string
	InA, InB    int
	Joined      int64
	MissingInA  int64
	MissingInB  int64
	DuplicatesA int64
	DuplicatesB int64
	Mismatches  int64
	// FeatureMismatches counts joined events whose feature vectors (when both streams
	// carry them: include_features) differ in any bit.
	FeatureMismatches int64
	// ReasonMismatches counts joined events of the same version whose explanations
	// (reasons, base value: alerting rows) differ in any bit, or that one side explains.
	ReasonMismatches int64
	MaxAbsDiff       float64
	FirstMismatch    []string
	FirstMissingA    []string
	FirstMissingB    []string
	ConflictsWithin  int64
	// Pairs compares the events that the two streams scored with different model
	// versions (a what-if replay, or a swap one side did not follow): not mismatches, but
	// how the scores and the alerts moved, per pair of versions.
	Pairs []VersionPair
}

// VersionPair is the comparison of the events scored by version A on one side and by B
// on the other.
type VersionPair struct {
	A, B   string
	Events int64
	// DiffQuantiles are p50, p90, p99 and the maximum of |score B − score A|.
	DiffQuantiles [4]float64
	// AlertsGained are events at or above the threshold with B only; AlertsLost with A
	// only.
	AlertsGained, AlertsLost int64
	diffs                    []float64
}

// Options tune Verify.
type Options struct {
	// Tolerance is the largest |diff| that counts as equal; 0: bit-exact.
	Tolerance float64
	// Show bounds the examples the report lists.
	Show int
	// Threshold is the alert threshold, for the alerts gained and lost between versions.
	Threshold float64
	// Decode turns a prediction value that is not JSON (output.format avro) into its JSON
	// (drivers.PredictionJSON); nil: every value is JSON.
	Decode func(ctx context.Context, value []byte) ([]byte, error)
}

// OK reports whether the streams agree: nothing missing on either side, no score or
// feature mismatch, no duplicate that disagrees with its first.
func (r *Report) OK() bool {
	return r.MissingInA == 0 && r.MissingInB == 0 && r.Mismatches == 0 && r.FeatureMismatches == 0 && r.ConflictsWithin == 0 && r.ReasonMismatches == 0
}

// Verify joins the prediction streams a and b (topic:NAME, read to its end offsets now, or
// file:PATH) on their input records. Scores must be bit-identical, or within tolerance when
// it is above 0; show bounds the examples the report lists.
func Verify(ctx context.Context, kc topics.ClientConfig, a, b string, o Options) (*Report, error) {
	tolerance, show := o.Tolerance, o.Show
	sa, err := readPredictions(ctx, kc, a, o.Decode)
	if err != nil {
		return nil, err
	}
	sb, err := readPredictions(ctx, kc, b, o.Decode)
	if err != nil {
		return nil, err
	}
	rep := &Report{A: a, B: b, InA: len(sa.Scores), InB: len(sb.Scores),
		DuplicatesA: sa.Duplicates, DuplicatesB: sb.Duplicates, ConflictsWithin: sa.Conflicting + sb.Conflicting}
	keys := make([]Key, 0, len(sa.Scores))
	for k := range sa.Scores {
		keys = append(keys, k)
	}
	sortKeys(keys)
	pairs := versionPairs{}
	for _, k := range keys {
		x := sa.Scores[k]
		y, ok := sb.Scores[k]
		if !ok {
			rep.MissingInB++
			if len(rep.FirstMissingB) < show {
				rep.FirstMissingB = append(rep.FirstMissingB, k.String())
			}
			continue
		}
		rep.Joined++
		if fa, fb := sa.Features[k], sb.Features[k]; fa != nil && fb != nil && !SameBits(fa, fb) {
			rep.FeatureMismatches++
			if len(rep.FirstMismatch) < show {
				rep.FirstMismatch = append(rep.FirstMismatch, fmt.Sprintf("%s: features %v vs %v", k, fa, fb))
			}
		}
		if va, vb := sa.Versions[k], sb.Versions[k]; va != vb {
			pairs.add(va, vb, x, y, o.Threshold)
			continue
		}
		rep.compareReasons(k, sa.Reasons[k], sb.Reasons[k], show)
		d := math.Abs(float64(x) - float64(y))
		rep.MaxAbsDiff = math.Max(rep.MaxAbsDiff, d)
		equal := math.Float32bits(x) == math.Float32bits(y)
		if tolerance > 0 {
			equal = d <= tolerance
		}
		if !equal {
			rep.Mismatches++
			if len(rep.FirstMismatch) < show {
				rep.FirstMismatch = append(rep.FirstMismatch, fmt.Sprintf("%s: %v vs %v (diff %g)", k, x, y, d))
			}
		}
	}
	rep.Pairs = pairs.done()
	missA := make([]Key, 0)
	for k := range sb.Scores {
		if _, ok := sa.Scores[k]; !ok {
			missA = append(missA, k)
		}
	}
	sortKeys(missA)
	rep.MissingInA = int64(len(missA))
	for i := 0; i < len(missA) && i < show; i++ {
		rep.FirstMissingA = append(rep.FirstMissingA, missA[i].String())
	}
	return rep, nil
}

// SameBits reports whether two feature vectors are identical bit for bit.
func SameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func sortKeys(ks []Key) {
	sort.Slice(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
}

// ReadPredictions reads one prediction stream, topic:NAME or file:PATH.
func ReadPredictions(ctx context.Context, kc topics.ClientConfig, spec string) (*PredictionSet, error) {
	return readPredictions(ctx, kc, spec, nil)
}

// readLines calls add with each non-empty line of the file at path.
func readLines(path string, add func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := add(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// readPredictions is ReadPredictions with a decoder of non-JSON topic values (nil: none).
func readPredictions(ctx context.Context, kc topics.ClientConfig, spec string, decode func(context.Context, []byte) ([]byte, error)) (*PredictionSet, error) {
	kind, name, ok := strings.Cut(spec, ":")
	if !ok || name == "" {
		return nil, fmt.Errorf("%q: want topic:NAME or file:PATH", spec)
	}
	set := &PredictionSet{Name: spec, Scores: map[Key]float32{}, Features: map[Key][]float32{}, Versions: map[Key]string{}, Reasons: map[Key]string{}}
	add := func(line []byte) error { return set.add(spec, line) }
	switch kind {
	case "file":
		if err := readLines(name, add); err != nil {
			return nil, err
		}
		return set, nil
	case "topic":
		err := topics.ReadToEnd(ctx, kc, []string{name}, func(recs []record.Record) error {
			for i := range recs {
				v := recs[i].Value
				if decode != nil {
					var err error
					if v, err = decode(ctx, v); err != nil {
						return fmt.Errorf("%s: %w", spec, err)
					}
				}
				if err := add(v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return set, nil
	}
	return nil, fmt.Errorf("%q: want topic:NAME or file:PATH", spec)
}

// Print writes r as verify prints it.
func Print(w io.Writer, r *Report, tolerance float64) {
	mode := "bit-exact"
	if tolerance > 0 {
		mode = fmt.Sprintf("tolerance %g", tolerance)
	}
	fmt.Fprintf(w, "A %s: %d predictions (%d duplicates)\n", r.A, r.InA, r.DuplicatesA)
	fmt.Fprintf(w, "B %s: %d predictions (%d duplicates)\n", r.B, r.InB, r.DuplicatesB)
	fmt.Fprintf(w, "joined %d, missing in A %d, missing in B %d, score mismatches %d (%s, max |diff| %g), feature mismatches %d, conflicting duplicates %d\n",
		r.Joined, r.MissingInA, r.MissingInB, r.Mismatches, mode, r.MaxAbsDiff, r.FeatureMismatches, r.ConflictsWithin)
	if r.ReasonMismatches > 0 {
		fmt.Fprintf(w, "reason mismatches %d (alerting rows whose reasons differ)\n", r.ReasonMismatches)
	}
	for _, m := range r.FirstMismatch {
		fmt.Fprintln(w, "  mismatch", m)
	}
	for _, m := range r.FirstMissingA {
		fmt.Fprintln(w, "  missing in A", m)
	}
	for _, m := range r.FirstMissingB {
		fmt.Fprintln(w, "  missing in B", m)
	}
	for _, p := range r.Pairs {
		fmt.Fprintf(w, "versions %s (A) -> %s (B): %d events, |diff| p50 %.4g p90 %.4g p99 %.4g max %.4g, alerts gained %d, lost %d\n",
			p.A, p.B, p.Events, p.DiffQuantiles[0], p.DiffQuantiles[1], p.DiffQuantiles[2], p.DiffQuantiles[3], p.AlertsGained, p.AlertsLost)
	}
	if r.OK() {
		fmt.Fprintln(w, "OK: the streams agree")
	}
}

// versionPairs accumulates the comparisons of events scored by different versions.
type versionPairs map[[2]string]*VersionPair

func (v versionPairs) add(a, b string, x, y float32, threshold float64) {
	p, ok := v[[2]string{a, b}]
	if !ok {
		p = &VersionPair{A: a, B: b}
		v[[2]string{a, b}] = p
	}
	p.Events++
	p.diffs = append(p.diffs, math.Abs(float64(y)-float64(x)))
	alertA, alertB := float64(x) >= threshold, float64(y) >= threshold
	switch {
	case alertB && !alertA:
		p.AlertsGained++
	case alertA && !alertB:
		p.AlertsLost++
	}
}

// done returns the pairs by version, with their quantiles.
func (v versionPairs) done() []VersionPair {
	out := make([]VersionPair, 0, len(v))
	for _, p := range v {
		sort.Float64s(p.diffs)
		for i, q := range []float64{0.5, 0.9, 0.99, 1} {
			p.DiffQuantiles[i] = p.diffs[min(len(p.diffs)-1, int(q*float64(len(p.diffs))))]
		}
		p.diffs = nil
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].A != out[j].A {
			return out[i].A < out[j].A
		}
		return out[i].B < out[j].B
	})
	return out
}

// add reads one prediction line of the stream spec into set.
func (set *PredictionSet) add(spec string, line []byte) error {
	var p struct {
		pipeline.Prediction
		DeadLetter *json.RawMessage `json:"dead_letter"`
	}
	if err := json.Unmarshal(line, &p); err != nil {
		return fmt.Errorf("%s: not a prediction: %q: %w", spec, line[:min(len(line), 120)], err)
	}
	if p.DeadLetter != nil {
		set.DeadLetters++
		return nil
	}
	k := Key{p.Source.Topic, p.Source.Partition, p.Source.Offset}
	if prev, dup := set.Scores[k]; dup {
		set.Duplicates++
		if math.Float32bits(prev) != math.Float32bits(p.Score) || !SameBits(set.Features[k], p.Features) {
			set.Conflicting++
		}
		return nil
	}
	set.Scores[k] = p.Score
	set.Versions[k] = p.Model.Version
	if p.Features != nil {
		set.Features[k] = p.Features
	}
	if r := reasonsText(&p.Prediction); r != "" {
		set.Reasons[k] = r
	}
	return nil
}
