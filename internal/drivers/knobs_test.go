//go:build !integration

package drivers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
)

// The batch knobs reach the batcher of every driver. What is proven where:
// internal/config's knob table reads every batch.* key and STREAMSCORE_BATCH_* variable
// back from the scorer.BatcherConfig that config builds (TestEveryKnobReachesItsComponent,
// TestBatchJobBatcherKeepsTheKnobs: adaptive and target_utilisation included), and the
// scorer's batcher tests prove each knob's effect on a simulated clock (adaptive holds
// included). What is left to prove here is that each driver hands that BatcherConfig to
// its batcher whole: one run per driver with batch.preferred_sizes [7], which cuts
// batches at 7 rows ("preferred") as nothing else does (7 is neither max_size nor a size
// at which a backlog runs dry), so the reason shows in streamscore_batches_total. The
// YAML and the environment alternate between drivers; config proves both paths for every
// key. (An adaptive end-to-end check here was a verdict on the machine's speed: it
// needed a flush to take longer than a row's arrival.)

// knob is one setting under test: its YAML key under batch, its environment variable,
// its value in each, and the batch reason it must produce.
type knob struct {
	name   string
	yaml   map[string]any
	env    map[string]string
	reason string
}

var preferredKnob = knob{"preferred_sizes", map[string]any{"preferred_sizes": []int{7}}, map[string]string{"STREAMSCORE_BATCH_PREFERRED_SIZES": "7"}, "preferred"}

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

const knobEvents = 1000

func TestBatchKnobsReachTheBatcher(t *testing.T) {
	for _, tc := range []struct {
		driver  string
		fromEnv bool
	}{{"run", true}, {"backfill", false}, {"export", true}} {
		source := "yaml"
		if tc.fromEnv {
			source = "env"
		}
		k := preferredKnob
		t.Run(tc.driver+"/"+source, func(t *testing.T) {
			c := knobConfig(t, k, tc.fromEnv)
			createInputTopics(t, c, 3)
			produceT(t, c, knobEvents, 0, 9)
			reg := prometheus.NewRegistry()
			runDriver(t, c, tc.driver, reg)
			got := batchReasons(t, reg)
			t.Logf("batches by reason: %v", got)
			if got[k.reason] == 0 {
				t.Fatalf("batch.%s from %s: no batch cut for reason %q in %s (batches by reason: %v): the knob does not reach the batcher",
					k.name, source, k.reason, tc.driver, got)
			}
		})
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
		var early error
		exited := false
		testenv.Eventually(t, 2*time.Minute, func() error {
			select {
			case early = <-done:
				exited = true
				return nil
			default:
			}
			if n := stats.Done.Load(); n < knobEvents {
				return fmt.Errorf("live job scored %d of %d events", n, knobEvents)
			}
			return nil
		})
		if exited {
			stop()
			t.Fatalf("live job stopped early, after %d of %d events: %v", stats.Done.Load(), knobEvents, early)
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
