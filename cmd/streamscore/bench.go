package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// benchResults is what `streamscore bench` measures; it is also written as JSON.
type benchResults struct {
	Machine      string         `json:"machine"`
	Events       int            `json:"events"`
	KafkaCeiling float64        `json:"kafka_ceiling_events_per_s"`
	Scoring      []scoringPoint `json:"scoring_ceiling"`
	CatchUp      catchUpResult  `json:"catch_up"`
	Latency      []latencyPoint `json:"latency"`
	// LatencyLabels: the same loads with each event's label written a simulated week later.
	LatencyLabels []latencyPoint     `json:"latency_labels_flowing"`
	KafkaLatency  []latencyPoint     `json:"kafka_floor_latency"` // the relay at the same loads
	Backfill      float64            `json:"backfill_events_per_s"`
	Ratios        map[string]float64 `json:"ratios"`
}

type scoringPoint struct {
	Batch         int     `json:"batch"`
	RowsPerSecond float64 `json:"rows_per_s"`
	MicrosPerCall float64 `json:"us_per_call"`
}

type catchUpResult struct {
	EventsPerSecond float64 `json:"events_per_s"`
	CPUMicrosPerEvt float64 `json:"cpu_us_per_event"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	Seconds         float64 `json:"seconds"`
}

type latencyPoint struct {
	Offered  float64 `json:"offered_events_per_s"`
	Achieved float64 `json:"achieved_events_per_s"`
	Events   int     `json:"events"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	P999Ms   float64 `json:"p999_ms"`
	PeakRSS  float64 `json:"peak_rss_mib"`
}

func newBenchCmd(g *globalFlags) *cobra.Command {
	var events int
	var out string
	var seconds float64
	var only []string
	var rates []float64
	var replot string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the Kafka ceiling, the scoring ceiling, catch-up, latency under load, backfill and peak RSS",
		Long: `bench runs against a real broker (make bench starts one) and prints a table:
(a) the Kafka ceiling: a minimal franz-go consume->produce copy of the same topic;
(b) the scoring ceiling: ONNX Runtime alone on pre-built batches of 1 to 4096 rows;
(c) catch-up: N pre-produced events scored from offset zero by a streamscore process, with
    its CPU time per event and peak RSS;
(d) latency under offered load: events produced at fixed rates and the predictions read
    back by a subscriber: event-to-prediction p50, p99, p99.9;
(e) backfill throughput; and the ratios. Results go to OUT/results.json and OUT/latency.png.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if replot != "" {
				b, err := os.ReadFile(filepath.Join(replot, "results.json"))
				if err != nil {
					return err
				}
				var res benchResults
				if err := json.Unmarshal(b, &res); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(replot, "results.json"), err)
				}
				printBench(cmd.OutOrStdout(), &res)
				return plotLatency(&res, filepath.Join(replot, "latency.png"))
			}
			c, err := g.load()
			if err != nil {
				return err
			}
			c.Log.Level = "warn"
			stages := map[string]bool{}
			for _, s := range only {
				if !strings.Contains("abcde", s) || len(s) != 1 {
					return fmt.Errorf("--only: unknown stage %q (a, b, c, d or e)", s)
				}
				stages[s] = true
			}
			res, err := runBench(cmd.Context(), c, benchPlan{events: events, step: time.Duration(seconds * float64(time.Second)), stages: stages, rates: rates}, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			b, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, "results.json"), b, 0o644); err != nil {
				return err
			}
			if len(res.Latency) > 0 {
				if err := plotLatency(res, filepath.Join(out, "latency.png")); err != nil {
					return err
				}
			}
			printBench(cmd.OutOrStdout(), res)
			fmt.Fprintf(cmd.OutOrStdout(), "\nwrote %s and %s\n", filepath.Join(out, "results.json"), filepath.Join(out, "latency.png"))
			return nil
		},
	}
	cmd.Flags().IntVar(&events, "events", 1_000_000, "pre-produced events for the ceiling, catch-up and backfill runs")
	cmd.Flags().StringVar(&out, "out", "bin/bench", "folder for results.json and latency.png")
	cmd.Flags().Float64Var(&seconds, "seconds", 4, "duration of each offered-load step")
	cmd.Flags().StringVar(&replot, "replot", "", "measure nothing: print the table of DIR/results.json and redraw DIR/latency.png")
	cmd.Flags().StringSliceVar(&only, "only", nil, "run only these stages (a,b,c,d,e); default all")
	cmd.Flags().Float64SliceVar(&rates, "rates", nil, "offered loads for (d), events/s (default 1000,10000,50000 and 80% of the catch-up rate)")
	return cmd
}

// benchPlan says what runBench measures: stages empty means all of them.
type benchPlan struct {
	events int
	step   time.Duration
	stages map[string]bool
	rates  []float64
}

func (p benchPlan) has(stage string) bool { return len(p.stages) == 0 || p.stages[stage] }

func runBench(ctx context.Context, base *config.Config, plan benchPlan, progress io.Writer) (*benchResults, error) {
	n, step := plan.events, plan.step
	res := &benchResults{Machine: fmt.Sprintf("%d CPUs, %s/%s, broker on the same machine", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH), Events: n, Ratios: map[string]float64{}}
	say := func(format string, args ...any) { fmt.Fprintf(progress, "bench: "+format+"\n", args...) }
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	c := benchTopics(base, "bench-"+suffix)
	bin, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		return nil, err
	}
	if plan.has("a") || plan.has("c") || plan.has("e") {
		if err := createBenchTopics(ctx, c, benchPartitions, c.Topics.Input[0], c.Topics.Labels, "copy-"+suffix); err != nil {
			return nil, err
		}
		p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
		if err != nil {
			return nil, err
		}
		say("producing %d events", n)
		_, err = sim.Produce(ctx, p, sim.ProduceOptions{Events: n, Seed: 7, Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
		p.Close()
		if err != nil {
			return nil, err
		}
	}

	if plan.has("a") {
		say("(a) Kafka ceiling: consume->produce copy")
		d, err := topics.CopyTopic(ctx, c.Kafka, c.Topics.Input[0], "copy-"+suffix, int64(n))
		if err != nil {
			return nil, err
		}
		res.KafkaCeiling = float64(n) / d.Seconds()
	}

	if plan.has("b") {
		say("(b) scoring ceiling: ONNX Runtime alone")
		if res.Scoring, err = scoringCeiling(cc); err != nil {
			return nil, err
		}
	}

	if plan.has("c") {
		say("(c) catch-up: a streamscore process from offset zero")
		if res.CatchUp, err = benchCatchUp(ctx, bin, c, n); err != nil {
			return nil, err
		}
	}

	if plan.has("e") {
		say("(e) backfill")
		bf, err := runBackfill(ctx, cc, backfillOptions{out: "topic:" + c.Topics.Backfill, batchSize: 256}, zap.NewNop(), io.Discard)
		if err != nil {
			return nil, err
		}
		res.Backfill = bf.EventsPerSecond
	}

	if plan.has("d") {
		rates := plan.rates
		if len(rates) == 0 {
			rates = []float64{1_000, 10_000, 50_000}
			if res.CatchUp.EventsPerSecond > 0 {
				rates = append(rates, math.Round(0.8*res.CatchUp.EventsPerSecond))
			}
		}
		for i, r := range rates {
			say("(d) latency at %.0f events/s offered", r)
			lc := benchTopics(base, fmt.Sprintf("lat%d-%s", i, suffix))
			if err := createBenchTopics(ctx, lc, benchPartitions, lc.Topics.Input[0], lc.Topics.Labels); err != nil {
				return nil, err
			}
			lp, err := benchLatency(ctx, pipelineSubject(bin), lc, r, step, false)
			if err != nil {
				return nil, err
			}
			res.Latency = append(res.Latency, lp)
			say("(d) latency at %.0f events/s offered, labels flowing", r)
			fc := benchTopics(base, fmt.Sprintf("flow%d-%s", i, suffix))
			if err := createBenchTopics(ctx, fc, benchPartitions, fc.Topics.Input[0], fc.Topics.Labels); err != nil {
				return nil, err
			}
			if lp, err = benchLatency(ctx, pipelineSubject(bin), fc, r, step, true); err != nil {
				return nil, err
			}
			res.LatencyLabels = append(res.LatencyLabels, lp)
			say("(d) Kafka floor: a relay at %.0f events/s offered", r)
			rc := benchTopics(base, fmt.Sprintf("relay%d-%s", i, suffix))
			if err := createBenchTopics(ctx, rc, benchPartitions, rc.Topics.Input[0]); err != nil {
				return nil, err
			}
			if lp, err = benchLatency(ctx, relaySubject, rc, r, step, false); err != nil {
				return nil, err
			}
			res.KafkaLatency = append(res.KafkaLatency, lp)
		}
	}

	best := 0.0
	for _, s := range res.Scoring {
		best = math.Max(best, s.RowsPerSecond)
	}
	if cu := res.CatchUp.EventsPerSecond; cu > 0 {
		if res.KafkaCeiling > 0 {
			res.Ratios["catch_up_over_kafka_ceiling"] = cu / res.KafkaCeiling
		}
		if res.Backfill > 0 {
			res.Ratios["backfill_over_catch_up"] = res.Backfill / cu
		}
		if best > 0 {
			// Everything but the model: the catch-up's wall time per event minus the
			// model's share at its best batch size.
			res.Ratios["non_model_us_per_event"] = 1e6/cu - 1e6/best
		}
	}
	if best > 0 {
		res.Ratios["model_us_per_event_best_batch"] = 1e6 / best
	}
	return res, nil
}

// benchPartitions is the partition count of the bench's topics.
const benchPartitions = 3

func benchTopics(base *config.Config, id string) *config.Config {
	c := *base
	c.Topics.Input = []string{"tx-" + id}
	c.Topics.Labels = "labels-" + id
	c.Topics.Predictions = "preds-" + id
	c.Topics.Alerts = "alerts-" + id
	c.Topics.DeadLetter = "dlq-" + id
	c.Topics.Backfill = "backfill-" + id
	c.Group = "g-" + id
	c.Metrics.Address = ""
	c.CommitInterval = 100 * time.Millisecond
	return &c
}

func createBenchTopics(ctx context.Context, c *config.Config, partitions int32, names ...string) error {
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		return err
	}
	defer adm.Close()
	var specs []topics.TopicSpec
	for _, n := range names {
		specs = append(specs, topics.TopicSpec{Name: n, Partitions: partitions})
	}
	return adm.EnsureTopics(ctx, c.Topics.ReplicationFactor, specs...)
}

// benchRows returns 4096 realistic model inputs: the rows of golden.jsonl beside the model
// (test-period rows with their window features), repeated; without one, the stateless
// features of simulated events (window columns left 0).
func benchRows(cc *config.Compiled, f int) ([]float32, error) {
	rows := make([]float32, 4096*f)
	if raw, err := os.ReadFile(filepath.Join(filepath.Dir(cc.Resolve(cc.Model.Path)), "golden.jsonl")); err == nil {
		var golden [][]float32
		for _, line := range bytes.Split(raw, []byte("\n")) {
			var g struct {
				Features []float32 `json:"features"`
			}
			if json.Unmarshal(line, &g) == nil && len(g.Features) == f {
				golden = append(golden, g.Features)
			}
		}
		if len(golden) > 0 {
			for i := 0; i < 4096; i++ {
				copy(rows[i*f:], golden[i%len(golden)])
			}
			return rows, nil
		}
	}
	gen := sim.New(sim.Config{Seed: 3})
	dec := pipeline.NewDecoder(cc.Schema)
	ev := dec.NewEvent()
	for i := 0; i < 4096; i++ {
		tx := gen.Next()
		if err := dec.Decode(tx.AppendEvent(nil), time.Time{}, ev); err != nil {
			return nil, err
		}
		if err := cc.Features.Extract(ev, rows[i*f:]); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

func scoringCeiling(cc *config.Compiled) ([]scoringPoint, error) {
	model, err := scorer.Open(cc.ModelOptions())
	if err != nil {
		return nil, err
	}
	defer model.Close()
	f := model.NumFeatures()
	rows, err := benchRows(cc, f)
	if err != nil {
		return nil, err
	}
	out := make([]float32, 4096)
	var pts []scoringPoint
	for b := 1; b <= 4096; b *= 2 {
		var scratch []float32
		calls := 0
		start := time.Now()
		for time.Since(start) < 300*time.Millisecond {
			if scratch, err = model.Score(rows, b, out, scratch); err != nil {
				return nil, err
			}
			calls++
		}
		el := time.Since(start)
		pts = append(pts, scoringPoint{Batch: b, RowsPerSecond: float64(calls*b) / el.Seconds(), MicrosPerCall: float64(el.Microseconds()) / float64(calls)})
	}
	return pts, nil
}

// writeRunConfig writes c, with an absolute model path, as dir/streamscore.yaml for a
// child process to load.
func writeRunConfig(c *config.Config, dir string) (string, error) {
	abs, err := filepath.Abs(c.Resolve(c.Model.Path))
	if err != nil {
		return "", err
	}
	cc := *c
	cc.Model.Path = abs
	b, err := yaml.Marshal(&cc)
	if err != nil {
		return "", err
	}
	cfg := filepath.Join(dir, "streamscore.yaml")
	return cfg, os.WriteFile(cfg, b, 0o600)
}

// startRun starts `streamscore run` with c in a child process.
func startRun(bin string, c *config.Config) (*exec.Cmd, func(), error) {
	dir, err := os.MkdirTemp("", "streamscore-bench")
	if err != nil {
		return nil, nil, err
	}
	cfg, err := writeRunConfig(c, dir)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfg, "--log-level", "error")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // then wait: it drains and exits
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	return cmd, stop, nil
}

// procStats reads a process's CPU time and peak RSS from /proc (Linux).
func procStats(pid int) (cpu time.Duration, hwm int64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// fields after the ")" of the command name; utime and stime are fields 14 and 15
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("bad /proc stat")
	}
	const clkTck = 100 // USER_HZ on Linux
	cpu = time.Duration(ut+st) * time.Second / clkTck
	hwm, err = peakRSSOf(pid)
	return cpu, hwm, err
}

func peakRSSOf(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM")
}

func benchCatchUp(ctx context.Context, bin string, c *config.Config, n int) (catchUpResult, error) {
	var r catchUpResult
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		return r, err
	}
	defer adm.Close()
	if err := createBenchTopics(ctx, c, benchPartitions, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter); err != nil {
		return r, err
	}
	start := time.Now()
	cmd, stop, err := startRun(bin, c)
	if err != nil {
		return r, err
	}
	defer stop()
	deadline := start.Add(10 * time.Minute)
	for {
		got, err := adm.EndOffsetsSum(ctx, c.Topics.Predictions)
		if err != nil {
			return r, err
		}
		if got >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("catch-up: %d of %d predictions after 10 minutes", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	cpu, hwm, err := procStats(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	r = catchUpResult{
		EventsPerSecond: float64(n) / el.Seconds(), Seconds: el.Seconds(),
		CPUMicrosPerEvt: float64(cpu.Microseconds()) / float64(n), PeakRSSMiB: float64(hwm) / (1 << 20),
	}
	return r, nil
}

// latencySubject is what benchLatency offers load to: it starts consuming c's input topic
// and writing one record per event to c's predictions topic, and returns the process to
// read the peak RSS of (0: none of its own) and a stop function.
type latencySubject func(ctx context.Context, c *config.Config) (pid int, stop func(), err error)

// pipelineSubject runs `streamscore run` in a child process and waits for it to join its
// group.
func pipelineSubject(bin string) latencySubject {
	return func(ctx context.Context, c *config.Config) (int, func(), error) {
		if err := createBenchTopics(ctx, c, benchPartitions, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter); err != nil {
			return 0, nil, err
		}
		cmd, stop, err := startRun(bin, c)
		if err != nil {
			return 0, nil, err
		}
		adm, err := topics.NewAdmin(c.Kafka)
		if err != nil {
			stop()
			return 0, nil, err
		}
		defer adm.Close()
		for wait := time.Now().Add(time.Minute); ; {
			if m, err := adm.AssignedMembers(ctx, c.Group); err == nil && m == 1 {
				return cmd.Process.Pid, stop, nil
			}
			if time.Now().After(wait) {
				stop()
				return 0, nil, errors.New("latency: the pipeline did not join its group in a minute")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// relaySubject is the Kafka floor: topics.Relay in this process.
func relaySubject(ctx context.Context, c *config.Config) (int, func(), error) {
	if err := createBenchTopics(ctx, c, benchPartitions, c.Topics.Predictions); err != nil {
		return 0, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- topics.Relay(rctx, c.Kafka, c.Topics.Input[0], c.Topics.Predictions) }()
	return 0, func() { cancel(); <-done }, nil
}

// benchLatency starts subject, offers events at rate for d, and measures, for every event,
// the time from its produce call to the moment a subscriber reads its prediction.
// With labels, each event's label is written to the labels topic a simulated week after it,
// as in production, so events wait for the labels their features join (pipeline.Feedback);
// without, the labels topic stays empty and its partitions idle.
func benchLatency(ctx context.Context, subject latencySubject, c *config.Config, rate float64, d time.Duration, labels bool) (latencyPoint, error) {
	lp := latencyPoint{Offered: rate}
	pid, stop, err := subject(ctx, c)
	if err != nil {
		return lp, err
	}
	defer stop()
	reader, err := topics.NewReader(c.Kafka, true, c.Topics.Predictions)
	if err != nil {
		return lp, err
	}
	defer reader.Close()

	type pos struct {
		p   int32
		off int64
	}
	var mu sync.Mutex
	sent := map[pos]time.Time{}
	var lat []time.Duration
	pending := map[pos]time.Time{} // predictions read before their produce ack arrived
	warmSeen := map[int32]bool{}   // partitions a warm-up event came back from

	n := int(rate * d.Seconds())
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		return lp, err
	}
	defer p.Close()
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	readDone := make(chan error, 1)
	go func() {
		for {
			recs, err := reader.Fetch(readCtx)
			now := time.Now()
			mu.Lock()
			for _, r := range recs {
				var pr pipeline.Prediction
				if err := json.Unmarshal(r.Value, &pr); err != nil {
					mu.Unlock()
					readDone <- err
					return
				}
				k := pos{pr.Source.Partition, pr.Source.Offset}
				if ts, ok := sent[k]; ok {
					if ts.IsZero() { // a warm-up event
						warmSeen[k.p] = true
					} else {
						lat = append(lat, now.Sub(ts))
					}
				} else {
					pending[k] = now
				}
			}
			done := len(lat) >= n
			mu.Unlock()
			if done || readCtx.Err() != nil {
				readDone <- nil
				return
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				readDone <- err
				return
			}
		}
	}()

	st := sim.NewStream(9, 0)
	if labels {
		// A simulated week and a day first, so that labels are due from the first measured
		// event on; the subject scores these while warming up.
		if _, err := sim.Produce(ctx, p, sim.ProduceOptions{Days: 8, Stream: st, HoldLabels: true,
			Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil); err != nil {
			return lp, err
		}
	}
	next := func() sim.Tx {
		if !labels {
			return st.Next(0, nil)
		}
		return st.Next(7*24*time.Hour, func(l *sim.Tx) {
			p.ProduceRaw(c.Topics.Labels, l.Key(), l.AppendLabel(nil), nil, func(error) {})
		})
	}
	// Warm up: the first events would also time the reader's and the subject's start-up
	// (metadata, offsets, each partition's first fetch). Send events until one has come back
	// from every partition, then measure.
	parts := map[int32]bool{}
	for warm := time.Now().Add(time.Minute); ; {
		tx := next()
		p.ProduceResult(c.Topics.Input[0], tx.Key(), tx.AppendEvent(nil), func(part int32, off int64, ts time.Time, err error) {
			mu.Lock()
			sent[pos{part, off}] = time.Time{} // a warm-up event: not measured
			if err == nil {
				parts[part] = true
			}
			mu.Unlock()
		})
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		warmed := len(parts) > 0 && len(warmSeen) == len(parts) && len(parts) >= benchPartitions
		mu.Unlock()
		if warmed {
			break
		}
		if time.Now().After(warm) {
			return lp, errors.New("latency: predictions did not come back from every partition within a minute")
		}
	}
	time.Sleep(200 * time.Millisecond) // let the warm-up events drain
	mu.Lock()
	lat, pending = lat[:0], map[pos]time.Time{}
	mu.Unlock()
	start := time.Now()
	for i := 0; i < n; i++ {
		if due := start.Add(time.Duration(float64(i) / rate * float64(time.Second))); time.Until(due) > 0 {
			time.Sleep(time.Until(due))
		}
		tx := next()
		p.ProduceResult(c.Topics.Input[0], tx.Key(), tx.AppendEvent(nil), func(part int32, off int64, ts time.Time, err error) {
			if err != nil {
				return
			}
			mu.Lock()
			k := pos{part, off}
			if got, ok := pending[k]; ok {
				lat = append(lat, got.Sub(ts))
				delete(pending, k)
			} else {
				sent[k] = ts
			}
			mu.Unlock()
		})
	}
	lp.Achieved = float64(n) / time.Since(start).Seconds()
	// Events go on, unmeasured, until the last measured prediction is read: with labels,
	// the last events would otherwise wait for labels that never come (the idle timeout).
	stopTrailer, trailerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(trailerDone)
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for {
			select {
			case <-stopTrailer:
				return
			case <-tick.C:
			}
			tx := next()
			p.ProduceResult(c.Topics.Input[0], tx.Key(), tx.AppendEvent(nil), func(part int32, off int64, _ time.Time, err error) {
				mu.Lock()
				sent[pos{part, off}] = time.Time{} // not measured
				mu.Unlock()
			})
		}
	}()
	select {
	case err = <-readDone:
	case <-time.After(2 * time.Minute):
		stopRead()
		<-readDone
	}
	close(stopTrailer)
	<-trailerDone
	if err != nil {
		return lp, err
	}
	var hwm int64
	if pid != 0 {
		if _, hwm, err = procStats(pid); err != nil {
			return lp, err
		}
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(x float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(math.Ceil(x*float64(len(lat)))) - 1
		return float64(lat[max(i, 0)]) / 1e6
	}
	lp.Events, lp.P50Ms, lp.P99Ms, lp.P999Ms, lp.PeakRSS = len(lat), q(0.5), q(0.99), q(0.999), float64(hwm)/(1<<20)
	if len(lat) < n {
		return lp, fmt.Errorf("latency at %.0f/s: %d of %d predictions read", rate, len(lat), n)
	}
	return lp, nil
}

func printBench(w io.Writer, r *benchResults) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\t%s\n", r.Machine)
	if r.KafkaCeiling > 0 {
		fmt.Fprintf(tw, "(a) Kafka ceiling (consume->produce copy, %d events)\t%.0f events/s\n", r.Events, r.KafkaCeiling)
	}
	for _, s := range r.Scoring {
		fmt.Fprintf(tw, "(b) ONNX Runtime alone, batch %d\t%.0f rows/s (%.1f us/call)\n", s.Batch, s.RowsPerSecond, s.MicrosPerCall)
	}
	if r.CatchUp.EventsPerSecond > 0 {
		fmt.Fprintf(tw, "(c) catch-up from offset zero (%d events)\t%.0f events/s, %.2f CPU us/event, peak RSS %.0f MiB\n",
			r.Events, r.CatchUp.EventsPerSecond, r.CatchUp.CPUMicrosPerEvt, r.CatchUp.PeakRSSMiB)
	}
	for i, l := range r.Latency {
		fmt.Fprintf(tw, "(d) offered %.0f events/s (achieved %.0f, %d events)\tp50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, peak RSS %.0f MiB\n",
			l.Offered, l.Achieved, l.Events, l.P50Ms, l.P99Ms, l.P999Ms, l.PeakRSS)
		if i < len(r.LatencyLabels) {
			k := r.LatencyLabels[i]
			fmt.Fprintf(tw, "    with labels flowing (each a simulated week after its event)\tp50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, peak RSS %.0f MiB\n", k.P50Ms, k.P99Ms, k.P999Ms, k.PeakRSS)
		}
		if i < len(r.KafkaLatency) {
			k := r.KafkaLatency[i]
			fmt.Fprintf(tw, "    Kafka floor (relay, no decoding, no model)\tp50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", k.P50Ms, k.P99Ms, k.P999Ms)
		}
	}
	if r.Backfill > 0 {
		fmt.Fprintf(tw, "(e) backfill into a topic\t%.0f events/s\n", r.Backfill)
	}
	if v, ok := r.Ratios["catch_up_over_kafka_ceiling"]; ok {
		fmt.Fprintf(tw, "c/a: catch-up over the Kafka ceiling\t%.2f\n", v)
	}
	if v, ok := r.Ratios["non_model_us_per_event"]; ok {
		fmt.Fprintf(tw, "per event: model at its best batch / everything else\t%.2f us / %.2f us\n",
			r.Ratios["model_us_per_event_best_batch"], v)
	}
	tw.Flush()
}
