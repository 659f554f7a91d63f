package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/google/pprof/profile"

	"github.com/streamscore/streamscore/internal/config"
)

// ResultsFile and PlotFile are the names, inside the output folder, of what Save writes.
const (
	ResultsFile = "results.json"
	PlotFile    = "latency.png"
	// ProfileFile is stage c's CPU profile (go tool pprof OUT/catchup-cpu.pb.gz).
	ProfileFile = "catchup-cpu.pb.gz"
)

// Results is what a bench run measures; it is also written as results.json, whose field
// names are a contract with earlier runs (--replot reads them back).
type Results struct {
	Machine      string         `json:"machine"`
	Events       int            `json:"events"`
	KafkaCeiling float64        `json:"kafka_ceiling_events_per_s"`
	Scoring      []ScoringPoint `json:"scoring_ceiling"`
	CatchUp      CatchUpResult  `json:"catch_up"`
	ExactlyOnce  CatchUpResult  `json:"catch_up_exactly_once"` // stage f
	Latency      []LatencyPoint `json:"latency"`
	// LatencyLabels: the same loads with each event's label written a simulated week later.
	LatencyLabels []LatencyPoint `json:"latency_labels_flowing"`
	KafkaLatency  []LatencyPoint `json:"kafka_floor_latency"` // the relay at the same loads
	// LatencySteps: each load's rounds and their medians (Latency, LatencyLabels and
	// KafkaLatency are those medians, for the plot and earlier runs' readers).
	LatencySteps []LatencyStep      `json:"latency_steps,omitempty"`
	Backfill     float64            `json:"backfill_events_per_s"`
	Ratios       map[string]float64 `json:"ratios"`
	Cascade      *CascadeResult     `json:"cascade,omitempty"` // stage g
	Scale        []ScalePoint       `json:"scale,omitempty"`   // stage s
}

// ScoringPoint is ONNX Runtime alone at one batch size (stage b).
type ScoringPoint struct {
	Batch         int     `json:"batch"`
	RowsPerSecond float64 `json:"rows_per_s"`
	MicrosPerCall float64 `json:"us_per_call"`
}

// CatchUpResult is a streamscore process scoring a backlog from offset zero (stage c).
type CatchUpResult struct {
	EventsPerSecond float64 `json:"events_per_s"`
	CPUMicrosPerEvt float64 `json:"cpu_us_per_event"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	Seconds         float64 `json:"seconds"`
	// CPU splits CPUMicrosPerEvt into ONNX Runtime and the rest (stage c).
	CPU *CPUSplit `json:"cpu_split,omitempty"`
	// WindowEntities and FeedbackEntities are the child's state gauges at the end
	// (streamscore_window_state_entities, streamscore_feedback_entities).
	WindowEntities   float64 `json:"window_state_entities,omitempty"`
	FeedbackEntities float64 `json:"feedback_entities,omitempty"`

	profile *profile.Profile // the merged CPU profile behind CPU, for ProfileFile
}

// LatencyPoint is event-to-prediction latency at one offered load (stage d).
type LatencyPoint struct {
	Offered  float64 `json:"offered_events_per_s"`
	Achieved float64 `json:"achieved_events_per_s"`
	Events   int     `json:"events"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	P999Ms   float64 `json:"p999_ms"`
	PeakRSS  float64 `json:"peak_rss_mib"`
	// Stages is the pipeline's own breakdown of the same run (none for the relay).
	Stages []StagePoint `json:"stages,omitempty"`
}

// Keys of Results.Ratios.
const (
	RatioCatchUpOverKafka  = "catch_up_over_kafka_ceiling"
	RatioBackfillOverCatch = "backfill_over_catch_up"
	RatioNonModelMicros    = "non_model_us_per_event"
	RatioModelMicrosAtBest = "model_us_per_event_best_batch"
	RatioExactlyOnce       = "exactly_once_over_catch_up"
)

// computeRatios fills r.Ratios from the stages that ran; a ratio whose inputs were not
// measured is left out rather than written as 0.
func computeRatios(r *Results) {
	if r.Ratios == nil {
		r.Ratios = map[string]float64{}
	}
	best := 0.0
	for _, s := range r.Scoring {
		best = math.Max(best, s.RowsPerSecond)
	}
	if cu := r.CatchUp.EventsPerSecond; cu > 0 {
		if r.KafkaCeiling > 0 {
			r.Ratios[RatioCatchUpOverKafka] = cu / r.KafkaCeiling
		}
		if r.Backfill > 0 {
			r.Ratios[RatioBackfillOverCatch] = r.Backfill / cu
		}
		if eo := r.ExactlyOnce.EventsPerSecond; eo > 0 {
			r.Ratios[RatioExactlyOnce] = eo / cu
		}
		if best > 0 {
			// Everything but the model: the catch-up's wall time per event minus the
			// model's share at its best batch size.
			r.Ratios[RatioNonModelMicros] = 1e6/cu - 1e6/best
		}
	}
	if best > 0 {
		r.Ratios[RatioModelMicrosAtBest] = 1e6 / best
	}
}

// WriteResults writes r as dir/results.json, creating dir.
func WriteResults(r *Results, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, ResultsFile)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// ReadResults reads dir/results.json as written by WriteResults.
func ReadResults(dir string) (*Results, error) {
	path := filepath.Join(dir, ResultsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Replot measures nothing: it prints the table of dir/results.json and redraws its plot.
func Replot(w io.Writer, dir string) error {
	res, err := ReadResults(dir)
	if err != nil {
		return err
	}
	if err := Print(w, res); err != nil {
		return err
	}
	return PlotLatency(res, filepath.Join(dir, PlotFile))
}

// Measure runs plan, writes results.json (and the latency plot) into out, and prints the
// table and what it wrote to w.
func Measure(ctx context.Context, c *config.Config, plan Plan, out string, w io.Writer) error {
	res, err := Run(ctx, c, plan, w)
	if err != nil {
		return err
	}
	written, err := WriteResults(res, out)
	if err != nil {
		return err
	}
	if len(res.Latency) > 0 {
		plot := filepath.Join(out, PlotFile)
		if err := PlotLatency(res, plot); err != nil {
			return err
		}
		written += " and " + plot
	}
	if p := res.CatchUp.profile; p != nil {
		path := filepath.Join(out, ProfileFile)
		if err := writeProfile(p, path); err != nil {
			return err
		}
		written += " and " + path
	}
	if err := Print(w, res); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "\nwrote %s\n", written)
	return err
}
