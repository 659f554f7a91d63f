package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// predictionSet is one side of an audit: the score of each input record.
type predictionSet struct {
	name        string
	scores      map[srcKey]float32
	features    map[srcKey][]float32 // when the predictions carry them
	duplicates  int64                // extra predictions for an input that already had one
	conflicting int64                // duplicates whose score differs from the first
	deadLetters int64
}

type verifyReport struct {
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
	MaxAbsDiff        float64
	FirstMismatch     []string
	FirstMissingA     []string
	FirstMissingB     []string
	ConflictsWithin   int64
}

func (r *verifyReport) ok() bool {
	return r.MissingInA == 0 && r.MissingInB == 0 && r.Mismatches == 0 && r.FeatureMismatches == 0 && r.ConflictsWithin == 0
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	var tolerance float64
	var show int
	cmd := &cobra.Command{
		Use:   "verify A B",
		Short: "Join two prediction streams (topic:NAME or file:PATH) and report gaps and score mismatches",
		Long: `verify joins two prediction streams on the source topic, partition and offset of the
event each prediction is for, and reports how many joined, how many are missing on each
side, duplicates, and score mismatches. Scores must be bit-identical unless --tolerance is
set (for GPU runs). It exits non-zero on any mismatch or gap. Topics are read from their
earliest offset up to their end when verify starts.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			rep, err := verifyStreams(cmd.Context(), c.Kafka, args[0], args[1], tolerance, show)
			if err != nil {
				return err
			}
			printVerify(cmd.OutOrStdout(), rep, tolerance)
			if !rep.ok() {
				return errors.New("the prediction streams differ")
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&tolerance, "tolerance", 0, "largest absolute score difference that counts as equal (0: bit-exact)")
	cmd.Flags().IntVar(&show, "show", 10, "how many mismatches and gaps to print")
	return cmd
}

func verifyStreams(ctx context.Context, kc topics.ClientConfig, a, b string, tolerance float64, show int) (*verifyReport, error) {
	sa, err := readPredictions(ctx, kc, a)
	if err != nil {
		return nil, err
	}
	sb, err := readPredictions(ctx, kc, b)
	if err != nil {
		return nil, err
	}
	rep := &verifyReport{A: a, B: b, InA: len(sa.scores), InB: len(sb.scores),
		DuplicatesA: sa.duplicates, DuplicatesB: sb.duplicates, ConflictsWithin: sa.conflicting + sb.conflicting}
	keys := make([]srcKey, 0, len(sa.scores))
	for k := range sa.scores {
		keys = append(keys, k)
	}
	sortKeys(keys)
	for _, k := range keys {
		x := sa.scores[k]
		y, ok := sb.scores[k]
		if !ok {
			rep.MissingInB++
			if len(rep.FirstMissingB) < show {
				rep.FirstMissingB = append(rep.FirstMissingB, k.String())
			}
			continue
		}
		rep.Joined++
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
		if fa, fb := sa.features[k], sb.features[k]; fa != nil && fb != nil && !sameBits(fa, fb) {
			rep.FeatureMismatches++
			if len(rep.FirstMismatch) < show {
				rep.FirstMismatch = append(rep.FirstMismatch, fmt.Sprintf("%s: features %v vs %v", k, fa, fb))
			}
		}
	}
	missA := make([]srcKey, 0)
	for k := range sb.scores {
		if _, ok := sa.scores[k]; !ok {
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

// sameBits reports whether two feature vectors are identical bit for bit.
func sameBits(a, b []float32) bool {
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

func sortKeys(ks []srcKey) {
	sort.Slice(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if a.topic != b.topic {
			return a.topic < b.topic
		}
		if a.partition != b.partition {
			return a.partition < b.partition
		}
		return a.offset < b.offset
	})
}

func (k srcKey) String() string { return fmt.Sprintf("%s/%d@%d", k.topic, k.partition, k.offset) }

func readPredictions(ctx context.Context, kc topics.ClientConfig, spec string) (*predictionSet, error) {
	kind, name, ok := strings.Cut(spec, ":")
	if !ok || name == "" {
		return nil, fmt.Errorf("%q: want topic:NAME or file:PATH", spec)
	}
	set := &predictionSet{name: spec, scores: map[srcKey]float32{}, features: map[srcKey][]float32{}}
	add := func(line []byte) error {
		var p struct {
			pipeline.Prediction
			DeadLetter *json.RawMessage `json:"dead_letter"`
		}
		if err := json.Unmarshal(line, &p); err != nil {
			return fmt.Errorf("%s: not a prediction: %q: %w", spec, clipBytes(line, 120), err)
		}
		if p.DeadLetter != nil {
			set.deadLetters++
			return nil
		}
		k := srcKey{p.Source.Topic, p.Source.Partition, p.Source.Offset}
		if prev, dup := set.scores[k]; dup {
			set.duplicates++
			if math.Float32bits(prev) != math.Float32bits(p.Score) || !sameBits(set.features[k], p.Features) {
				set.conflicting++
			}
			return nil
		}
		set.scores[k] = p.Score
		if p.Features != nil {
			set.features[k] = p.Features
		}
		return nil
	}
	switch kind {
	case "file":
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if len(sc.Bytes()) == 0 {
				continue
			}
			if err := add(sc.Bytes()); err != nil {
				return nil, err
			}
		}
		return set, sc.Err()
	case "topic":
		r, err := topics.NewReplay(ctx, kc, topics.ReplayOptions{Topics: []string{name}})
		if err != nil {
			return nil, err
		}
		defer r.Close()
		for {
			recs, err := r.Fetch(ctx)
			for _, rec := range recs {
				if err := add(rec.Value); err != nil {
					return nil, err
				}
			}
			if errors.Is(err, io.EOF) {
				return set, nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("%q: want topic:NAME or file:PATH", spec)
}

func printVerify(w io.Writer, r *verifyReport, tolerance float64) {
	mode := "bit-exact"
	if tolerance > 0 {
		mode = fmt.Sprintf("tolerance %g", tolerance)
	}
	fmt.Fprintf(w, "A %s: %d predictions (%d duplicates)\n", r.A, r.InA, r.DuplicatesA)
	fmt.Fprintf(w, "B %s: %d predictions (%d duplicates)\n", r.B, r.InB, r.DuplicatesB)
	fmt.Fprintf(w, "joined %d, missing in A %d, missing in B %d, score mismatches %d (%s, max |diff| %g), feature mismatches %d, conflicting duplicates %d\n",
		r.Joined, r.MissingInA, r.MissingInB, r.Mismatches, mode, r.MaxAbsDiff, r.FeatureMismatches, r.ConflictsWithin)
	for _, m := range r.FirstMismatch {
		fmt.Fprintln(w, "  mismatch", m)
	}
	for _, m := range r.FirstMissingA {
		fmt.Fprintln(w, "  missing in A", m)
	}
	for _, m := range r.FirstMissingB {
		fmt.Fprintln(w, "  missing in B", m)
	}
	if r.ok() {
		fmt.Fprintln(w, "OK: the streams agree")
	}
}
