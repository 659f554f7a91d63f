package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func sampleResults() *Results {
	r := &Results{
		Machine: "2 CPUs, linux/amd64, broker on the same machine", Events: 1000,
		KafkaCeiling:  500_000,
		Scoring:       []ScoringPoint{{Batch: 1, RowsPerSecond: 100_000, MicrosPerCall: 10}, {Batch: 256, RowsPerSecond: 1_000_000, MicrosPerCall: 256}},
		CatchUp:       CatchUpResult{EventsPerSecond: 125_000, CPUMicrosPerEvt: 12.5, PeakRSSMiB: 80, Seconds: 0.008},
		Latency:       []LatencyPoint{{Offered: 1000, Achieved: 999, Events: 4000, P50Ms: 3, P99Ms: 9, P999Ms: 20, PeakRSS: 60}},
		LatencyLabels: []LatencyPoint{{Offered: 1000, Achieved: 998, Events: 4000, P50Ms: 4, P99Ms: 10, P999Ms: 25, PeakRSS: 70}},
		KafkaLatency:  []LatencyPoint{{Offered: 1000, Achieved: 1000, Events: 4000, P50Ms: 2, P99Ms: 5, P999Ms: 8}},
		Backfill:      250_000,
	}
	computeRatios(r)
	return r
}

func TestComputeRatios(t *testing.T) {
	r := sampleResults()
	want := map[string]float64{
		RatioCatchUpOverKafka:  0.25,
		RatioBackfillOverCatch: 2,
		RatioNonModelMicros:    8 - 1, // 1e6/125k - 1e6/1M
		RatioModelMicrosAtBest: 1,
	}
	if !reflect.DeepEqual(r.Ratios, want) {
		t.Errorf("ratios %v, want %v", r.Ratios, want)
	}
	only := &Results{Scoring: r.Scoring}
	computeRatios(only)
	if len(only.Ratios) != 1 {
		t.Errorf("with only stage b, ratios %v; want the model's time alone", only.Ratios)
	}
}

// TestResultsJSONSchema: results.json keeps the field names earlier runs wrote, so that
// --replot reads them, and round-trips.
func TestResultsJSONSchema(t *testing.T) {
	r := sampleResults()
	dir := t.TempDir()
	path, err := WriteResults(r, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"backfill_events_per_s", "catch_up", "catch_up_exactly_once", "events", "kafka_ceiling_events_per_s", "kafka_floor_latency",
		"latency", "latency_labels_flowing", "machine", "ratios", "scoring_ceiling"}
	if !slices.Equal(keys, want) {
		t.Errorf("results.json keys %v, want %v", keys, want)
	}
	for _, field := range []string{`"rows_per_s"`, `"us_per_call"`, `"cpu_us_per_event"`, `"peak_rss_mib"`, `"offered_events_per_s"`, `"achieved_events_per_s"`, `"p999_ms"`} {
		if !bytes.Contains(raw, []byte(field)) {
			t.Errorf("results.json has no %s", field)
		}
	}
	back, err := ReadResults(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, r)
	}
}

func TestPrintAndPlot(t *testing.T) {
	r := sampleResults()
	var b strings.Builder
	if err := Print(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"(a) Kafka ceiling (consume->produce copy, 1000 events)", "500000 events/s",
		"(b) ONNX Runtime alone, batch 256", "1000000 rows/s (256.0 us/call)",
		"(c) catch-up from offset zero (1000 events)", "125000 events/s, 12.50 CPU us/event, peak RSS 80 MiB",
		"(d) offered 1000 events/s (achieved 999, 4000 events)", "p50 3.00 ms, p99 9.00 ms, p99.9 20.00 ms, peak RSS 60 MiB",
		"with labels flowing", "Kafka floor (relay, no decoding, no model)",
		"(e) backfill into a topic", "250000 events/s",
		"c/a: catch-up over the Kafka ceiling", "0.25",
		"per event: model at its best batch / everything else", "1.00 us / 7.00 us",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("table has no %q:\n%s", line, b.String())
		}
	}
	png := filepath.Join(t.TempDir(), PlotFile)
	if err := PlotLatency(r, png); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Errorf("latency plot: %v", err)
	}
}
