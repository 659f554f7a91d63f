package drivers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
)

// The batch knobs that only change where batches are cut (batch.preferred_sizes,
// batch.adaptive with batch.target_utilisation) must reach the batcher of every driver,
// from the YAML file and from the environment: each test runs a driver on a backlog and
// reads streamscore_batches_total{reason} from the registry the driver reported into.
// preferred_sizes [7] cuts batches at 7 rows ("preferred"), which nothing else does: 7
// is neither max_size nor a size at which a backlog runs dry. Adaptive batching holds a
// batch open to a target size ("target") only when it is on, and only at a cut: the
// preferred size 1 makes every batch's first row a cut, and on a backlog one row's flush
// takes longer than the next row takes to arrive, so from the ninth flush on the rule
// holds each batch to the few rows that bring utilisation under target_utilisation 1
// (below max_size: a target of max_size would be cut as "size"). Without adaptive every
// batch is cut at one row ("preferred").

// knob is one setting under test: its YAML key under batch, its environment variable,
// its value in each, and the batch reason it must produce.
type knob struct {
	name   string
	yaml   map[string]any
	env    map[string]string
	reason string
}

var batchKnobs = []knob{
	{"preferred_sizes", map[string]any{"preferred_sizes": []int{7}}, map[string]string{"STREAMSCORE_BATCH_PREFERRED_SIZES": "7"}, "preferred"},
	{"adaptive", map[string]any{"adaptive": true, "target_utilisation": 1.0, "preferred_sizes": []int{1}},
		map[string]string{"STREAMSCORE_BATCH_ADAPTIVE": "true", "STREAMSCORE_BATCH_TARGET_UTILISATION": "1", "STREAMSCORE_BATCH_PREFERRED_SIZES": "1"}, "target"},
}

// knobConfig is testConfig on the embedded broker with k set through the YAML file
// (fromEnv false) or the environment, loaded the way the binary loads it.
func knobConfig(t *testing.T, k knob, fromEnv bool) *config.Config {
	t.Helper()
	base := testConfig(t, embeddedBroker(t))
	raw, err := yaml.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(base.Resolve(base.Model.Path))
	if err != nil {
		t.Fatal(err)
	}
	doc["model"].(map[string]any)["path"] = abs
	env := map[string]string{}
	if fromEnv {
		env = k.env
	} else {
		for key, v := range k.yaml {
			doc["batch"].(map[string]any)[key] = v
		}
	}
	if raw, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "streamscore.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadWith(path, func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// batchReasons reads streamscore_batches_total by reason.
func batchReasons(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "streamscore_batches_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

const knobEvents = 3000

func TestBatchKnobsReachTheBatcher(t *testing.T) {
	for _, k := range batchKnobs {
		for _, fromEnv := range []bool{false, true} {
			source := "yaml"
			if fromEnv {
				source = "env"
			}
			for _, driver := range []string{"run", "backfill", "export"} {
				t.Run(strings.Join([]string{k.name, source, driver}, "/"), func(t *testing.T) {
					c := knobConfig(t, k, fromEnv)
					createInputTopics(t, c, 3)
					produceT(t, c, knobEvents, 0, 9)
					reg := prometheus.NewRegistry()
					runDriver(t, c, driver, reg)
					got := batchReasons(t, reg)
					t.Logf("batches by reason: %v", got)
					if got[k.reason] == 0 {
						t.Fatalf("batch.%s from %s: no batch cut for reason %q in %s (batches by reason: %v): the knob does not reach the batcher",
							k.name, source, k.reason, driver, got)
					}
				})
			}
		}
	}
}

// runDriver runs driver over the backlog of c's input topics, reporting into reg.
func runDriver(t *testing.T, c *config.Config, driver string, reg *prometheus.Registry) {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	switch driver {
	case "run":
		cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
		if err != nil {
			t.Fatal(err)
		}
		stats := &pipeline.Stats{}
		l, err := NewLive(ctx, cc, LiveDeps{Registry: reg, Logger: log, Stats: stats})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Run(runCtx) }()
		for stats.Done.Load() < knobEvents {
			select {
			case err := <-done:
				stop()
				t.Fatalf("live job stopped early: %v", err)
			case <-ctx.Done():
				stop()
				t.Fatalf("live job scored %d of %d events in 2 minutes", stats.Done.Load(), knobEvents)
			case <-time.After(10 * time.Millisecond): // polling the counter with a deadline
			}
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	case "backfill":
		cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Backfill(ctx, cc, BackfillOptions{Out: "file:" + filepath.Join(t.TempDir(), "bf.jsonl"), BatchSize: 256, Registry: reg}, log, nil); err != nil {
			t.Fatal(err)
		}
	case "export":
		cc, err := c.Validate(config.Needs{Kafka: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Export(ctx, cc, ExportOptions{Out: "file:" + filepath.Join(t.TempDir(), "x.csv"), Registry: reg}, log, nil); err != nil {
			t.Fatal(err)
		}
	}
}
