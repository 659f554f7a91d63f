//go:build integration

package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// routedPrediction is what the acceptance test reads of a prediction: who routed it and
// what it scored.
type routedPrediction struct {
	Key, ID, Version, Arm string // Arm "": no experiment routed it
	Score                 float32
}

type srcPos struct {
	Partition int32
	Offset    int64
}

// readRouted reads every prediction of topic by input position, the last one where a
// position was written twice (at-least-once redelivery after the kill; duplicates of a
// position share a key, hence an output partition, so the last read is the last written).
func readRouted(t *testing.T, c *config.Config, topic, experiment string) map[srcPos]routedPrediction {
	t.Helper()
	out := map[srcPos]routedPrediction{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := topics.ReadToEnd(ctx, c.Kafka, []string{topic}, func(recs []record.Record) error {
		for i := range recs {
			var p pipeline.Prediction
			if err := json.Unmarshal(recs[i].Value, &p); err != nil {
				return err
			}
			r := routedPrediction{Key: string(recs[i].Key), ID: string(p.ID), Version: p.Model.Version, Score: p.Score}
			if p.Experiment != nil {
				if p.Experiment.Name != experiment {
					return fmt.Errorf("prediction of %+v names experiment %q", p.Source, p.Experiment.Name)
				}
				r.Arm = p.Experiment.Arm
			}
			pos := srcPos{p.Source.Partition, p.Source.Offset}
			// A redelivered event may have been scored before the experiment started and
			// again after (the later one is what the switch markers replay); otherwise
			// its two predictions must agree.
			if prev, dup := out[pos]; dup && prev != r && (prev.Arm != "" || r.Arm == "") {
				return fmt.Errorf("%+v predicted twice differently: %+v and then %+v", pos, prev, r)
			}
			out[pos] = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIntegrationExperimentIsStickyAcrossKillAndReplay is issue 24's acceptance: two
// instances (processes of the binary) score a stream; an experiment sending 20% of keys
// to the small forest starts while events flow; one instance is SIGKILLed, the group
// rebalances to the other, and it is restarted, rebalancing again. Every key stays in one arm (the one the hash says) for the
// experiment's life, the treatment holds 20 ± 2% of keys, no event is missing, every
// prediction carries the event's id, and a plain backfill reproduces (arm, version,
// score) bit for bit.
func TestIntegrationExperimentIsStickyAcrossKillAndReplay(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 4)
	c.SessionTimeout = 6 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := cc.OpenRegistry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	push := func(file, golden string) string {
		t.Helper()
		rows, err := lifecycle.GoldenRows("../../testdata/model/"+golden, cc.Features.Len())
		if err != nil {
			t.Fatal(err)
		}
		meta, err := lifecycle.PushFile(ctx, reg, "../../testdata/model/"+file, lifecycle.PushOptions{Name: cc.Model.Name, Width: cc.Features.Len(), Golden: rows, By: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return meta.Version
	}
	control, treatment := push("fraud.onnx", "golden.jsonl"), push("fraud-small.onnx", "golden-small.jsonl")
	if _, err := lifecycle.Activate(ctx, reg, cc.Model.Name, control, topics.RoleLive, "test"); err != nil {
		t.Fatal(err)
	}

	bin := buildBinary(t)
	logf, err := os.Create(filepath.Join(t.TempDir(), "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cfgs := map[string]string{} // one file each: the processes must not share a temporary config
	procs := map[string]*exec.Cmd{}
	for _, name := range []string{"a", "b"} {
		// Dynamic membership: the kill makes the group rebalance twice, giving b's
		// partitions to a, and some back to the restarted b.
		cfgs[name] = writeConfig(t, c)
		procs[name] = startProcess(t, bin, cfgs[name], logf)
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	waitMembers(t, c, 2)
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	grows := func(what string, by int64) {
		t.Helper()
		before, _ := adm.EndOffsetsSum(ctx, c.Topics.Predictions)
		if err := testenv.Poll(2*time.Minute, func() error {
			if n, err := adm.EndOffsetsSum(ctx, c.Topics.Predictions); err != nil || n < before+by {
				return fmt.Errorf("%s: predictions not growing (log: %s)", what, logf.Name())
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	events := produceUntilStopped(c, sim.NewStream(53, 0.002), 1500, stop)
	grows("before the experiment", 500)
	// A fixed name: the arms are then a fixed function of the keys, and the keys a fixed
	// stream's; a random name would make the share a new draw each run (σ ≈ 0.7% here).
	exp := topics.Experiment{Name: "accept", Treatment: treatment, Share: 20}
	if _, err := lifecycle.StartExperiment(ctx, reg, lifecycle.ExperimentSpec{Model: cc.Model.Name, Experiment: exp},
		lifecycle.RoutingOptions{Schema: cc.Schema, By: "test"}); err != nil {
		t.Fatal(err)
	}
	grows("after the experiment started", 4000) // thousands of keys: the share is measured on them
	if err := procs["b"].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = procs["b"].Wait() // killed: the exit status is the signal
	waitMembers(t, c, 1)  // its session expired: a holds every partition
	grows("with one instance", 1000)
	procs["b"] = startProcess(t, bin, cfgs["b"], logf)
	waitMembers(t, c, 2)
	grows("after the restart", 2000)
	close(stop)
	res := result(t, events)
	awaitScored(t, c, res.Events)
	for name, p := range procs {
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("instance %s did not exit cleanly on SIGTERM: %v (log: %s)", name, err, logf.Name())
		}
		delete(procs, name)
	}

	counts := finalOutputs(t, c).Counts()
	missing := res.Events - counts.Predictions - counts.DeadLettered
	live := readRouted(t, c, c.Topics.Predictions, exp.Name)
	armOf := map[string]string{}
	routed, treated := 0, 0
	for pos, p := range live {
		if p.ID == "" || p.ID == "null" {
			t.Fatalf("prediction of %+v carries no id", pos)
		}
		if p.Arm == "" {
			if p.Version != control {
				t.Fatalf("%+v: scored by %s outside the experiment", pos, p.Version)
			}
			continue
		}
		routed++
		if want := lifecycle.Arm(exp, []byte(p.Key)); p.Arm != want {
			t.Fatalf("key %s in arm %s, its hash says %s", p.Key, p.Arm, want)
		}
		if prev, ok := armOf[p.Key]; ok && prev != p.Arm {
			t.Fatalf("key %s in both arms", p.Key)
		}
		armOf[p.Key] = p.Arm
		if wantV := map[string]string{lifecycle.ArmControl: control, lifecycle.ArmTreatment: treatment}[p.Arm]; p.Version != wantV {
			t.Fatalf("%+v in arm %s scored by %s, want %s", pos, p.Arm, p.Version, wantV)
		}
	}
	for _, a := range armOf {
		if a == lifecycle.ArmTreatment {
			treated++
		}
	}
	share := float64(treated) / float64(len(armOf))

	if _, err := Backfill(ctx, cc, BackfillOptions{Out: "topic:" + c.Topics.Backfill, BatchSize: 256}, zap.NewNop(), nil); err != nil {
		t.Fatal(err)
	}
	replay := readRouted(t, c, c.Topics.Backfill, exp.Name)
	differ := 0
	for pos, p := range live {
		r, ok := replay[pos]
		if !ok || r.Arm != p.Arm || r.Version != p.Version || math.Float32bits(r.Score) != math.Float32bits(p.Score) || r.ID != p.ID {
			if differ++; differ <= 3 {
				t.Errorf("%+v: live %+v, backfill %+v", pos, p, r)
			}
		}
	}
	report(t, "experiment acceptance: 2 instances, one SIGKILLed and restarted; input %d, predictions %d (%d routed by the experiment), dead letters %d, missing %d; keys in the experiment %d, treatment %.2f%%; backfill by history: %d of %d predictions differ in (arm, version, score, id)",
		res.Events, counts.Predictions, routed, counts.DeadLettered, missing, len(armOf), 100*share, differ, len(live))
	if missing != 0 {
		t.Fatalf("%d events without an output", missing)
	}
	if routed == 0 || math.Abs(share-0.20) > 0.02 {
		t.Fatalf("treatment holds %.4f of %d keys, want 0.20 ± 0.02", share, len(armOf))
	}
	if differ != 0 || len(replay) != len(live) {
		t.Fatalf("the backfill does not reproduce live routing: %d differ, %d replayed of %d", differ, len(replay), len(live))
	}
	// The report's counts equal its own join of the topics (checkExperimentReport), and
	// its events per arm equal the predictions this test read, by position.
	rep := checkExperimentReport(t, cc.Config, exp.Name)
	want := map[string]int64{}
	for _, p := range live {
		if p.Arm != "" {
			want[p.Arm]++
		}
	}
	for _, a := range rep.Arms {
		if a.Events != want[a.Arm] {
			t.Errorf("experiment report: arm %s has %d events, the topics %d", a.Arm, a.Events, want[a.Arm])
		}
	}
	if len(rep.Arms) != len(want) {
		t.Errorf("experiment report: %d arms, the topics %d", len(rep.Arms), len(want))
	}
}
