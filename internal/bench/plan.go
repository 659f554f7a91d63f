package bench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// Stage names one measurement of the bench: "a" to "g".
type Stage string

// The stages, in the order the table prints them.
const (
	StageKafkaCeiling   Stage = "a" // a franz-go consume->produce copy
	StageScoringCeiling Stage = "b" // ONNX Runtime alone
	StageCatchUp        Stage = "c" // a streamscore process from offset zero
	StageLatency        Stage = "d" // event-to-prediction latency under offered load
	StageBackfill       Stage = "e" // a streamscore backfill into a topic
	StageExactlyOnce    Stage = "f" // stage c with delivery: exactly-once
	StageCascade        Stage = "g" // a cascade against the forest alone: CPU per event and quality
	StageScale          Stage = "s" // catch-up at several partition counts and sizes; only when named
)

// ParseStages reads the --only flag: stage letters, each on its own ("a", "c").
// None means every stage but s.
func ParseStages(only []string) (map[Stage]bool, error) {
	stages := map[Stage]bool{}
	for _, s := range only {
		if len(s) != 1 || !strings.ContainsAny(s, "abcdefgs") {
			return nil, fmt.Errorf("--only: unknown stage %q (a, b, c, d, e, f, g or s)", s)
		}
		stages[Stage(s)] = true
	}
	return stages, nil
}

// Plan says what Run measures and with which streamscore binary.
type Plan struct {
	// Events is the number of pre-produced events of stages a, c and e.
	Events int
	// Step is how long each run of an offered load of stage d lasts.
	Step time.Duration
	// Repeats is the number of runs of each offered load of stage d, each of the Kafka
	// floor and of streamscore, so that no single noisy run decides the difference;
	// 0: DefaultRepeats.
	Repeats int
	// WarmupRounds are rounds of stage d's first offered load run before it and thrown
	// away: a broker that has just started serves its first minute far slower (the
	// floor's p50 was 18 ms in such a first round, 2–5 ms after), and a round that
	// measures that start-up says nothing of the pipeline.
	WarmupRounds int
	// Scale is what stage s runs.
	Scale ScalePlan
	// Stages to run; empty: all of them.
	Stages map[Stage]bool
	// Rates are the offered loads of stage d in events/s; empty: DefaultRates.
	Rates []float64
	// Binary is the streamscore executable that stages c, d and e run as a child process.
	Binary string
	// ChildLogLevel is the --log-level of those children (empty: error).
	ChildLogLevel string
	// Profile, when set, is the metrics address (host:port) of the catch-up children of
	// stages c and f, with the Go profiler on (/debug/pprof/), for profiling a catch-up.
	Profile string
	// Features is stage g's features CSV of the handbook's periods (`streamscore features
	// --days 136`), written by Binary when it does not exist. CheapModel is the cascade's
	// first stage.
	Features, CheapModel string
}

// DefaultRepeats is the runs of each load of stage d when the plan names none: five, so that
// the median ignores the two noisiest either way.
const DefaultRepeats = 5

// repeats is p.Repeats or its default.
func (p Plan) repeats() int {
	if p.Repeats == 0 {
		return DefaultRepeats
	}
	return p.Repeats
}

// ScalePlan is stage s: a catch-up at each input partition count and size.
type ScalePlan struct {
	Partitions []int
	Events     []int
}

// Has says whether p runs stage s. Stage s (minutes of catch-ups) runs only when named.
func (p Plan) Has(s Stage) bool { return len(p.Stages) == 0 && s != StageScale || p.Stages[s] }

// needsBinary says whether a stage of p runs the streamscore binary.
func (p Plan) needsBinary() bool {
	return p.Has(StageCatchUp) || p.Has(StageLatency) || p.Has(StageBackfill) || p.Has(StageExactlyOnce) || p.Has(StageScale)
}

// needsBacklog says whether a stage of p reads the pre-produced events.
func (p Plan) needsBacklog() bool {
	return p.Has(StageKafkaCeiling) || p.Has(StageCatchUp) || p.Has(StageBackfill) || p.Has(StageExactlyOnce)
}

// validate says what to fix in p before anything is measured.
func (p Plan) validate() error {
	var errs []error
	if p.Events <= 0 && p.needsBacklog() {
		errs = append(errs, fmt.Errorf("--events %d: want at least 1", p.Events))
	}
	if p.Has(StageLatency) {
		if p.Step <= 0 {
			errs = append(errs, fmt.Errorf("--seconds %v: want a positive duration", p.Step.Seconds()))
		}
		if p.Repeats < 0 {
			errs = append(errs, fmt.Errorf("--repeats %d: want at least 1 (%d for a median that one noisy run cannot move)", p.Repeats, DefaultRepeats))
		}
		if p.WarmupRounds < 0 {
			errs = append(errs, fmt.Errorf("--warmup-rounds %d: want 0 (none) or more", p.WarmupRounds))
		}
	}
	if p.Has(StageScale) {
		errs = append(errs, p.Scale.validate()...)
	}
	for _, r := range p.Rates {
		if !(r > 0) || math.IsInf(r, 0) {
			errs = append(errs, fmt.Errorf("--rates: %v is not a positive number of events/s", r))
		}
	}
	if p.Has(StageCascade) && (p.Features == "" || p.CheapModel == "") {
		errs = append(errs, errors.New("stage g needs --features (a CSV path, written when missing) and --cheap-model"))
	}
	if p.needsBinary() || p.Has(StageCascade) && !exists(p.Features) {
		if st, err := os.Stat(p.Binary); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("--bin %q: not an executable streamscore binary (make build writes bin/streamscore)", p.Binary))
		}
	}
	return errors.Join(errs...)
}

// latencyRates is the offered loads of stage d: p.Rates, or by default 1k, 10k and 50k
// events/s and, when stage c ran, 80% of its catch-up rate (near saturation).
func (p Plan) latencyRates(catchUp float64) []float64 {
	if len(p.Rates) > 0 {
		return p.Rates
	}
	rates := []float64{1_000, 10_000, 50_000}
	if catchUp > 0 {
		rates = append(rates, math.Round(0.8*catchUp))
	}
	return rates
}

// validate says what to fix in s.
func (s ScalePlan) validate() []error {
	var errs []error
	if len(s.Partitions) == 0 || len(s.Events) == 0 {
		errs = append(errs, errors.New("stage s needs --scale-partitions and --scale-events"))
	}
	for _, n := range s.Partitions {
		if n < 1 {
			errs = append(errs, fmt.Errorf("--scale-partitions: %d: want at least 1", n))
		}
	}
	for _, n := range s.Events {
		if n < 1 {
			errs = append(errs, fmt.Errorf("--scale-events: %d: want at least 1", n))
		}
	}
	return errs
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
