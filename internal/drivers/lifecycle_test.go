//go:build integration

package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/internal/onnxtest"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// lifecycleModel is a valid model of the handbook's 15 inputs whose version and scores
// differ with bias.
func lifecycleModel(bias float32) []byte {
	w := make([]float32, 15)
	for i := range w {
		w[i] = 0.002 * float32(i+1)
	}
	return onnxtest.Logistic(15, w, bias)
}

// liveVersion is the version that the job's streamscore_model_info says it scores with.
func liveVersion(t *testing.T, reg *prometheus.Registry, role string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "streamscore_model_info" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["role"] == role && m.GetGauge().GetValue() == 1 {
				return labels["version"]
			}
		}
	}
	return ""
}

// waitVersion polls until the job reports version in role, within a generous deadline.
func waitVersion(t *testing.T, reg *prometheus.Registry, role, version string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := liveVersion(t, reg, role); got != version {
			return fmt.Errorf("the instance still scores with %q as %s, want %s", got, role, version)
		}
		return nil
	})
}

// scoredEvent is one prediction as read back from a topic.
type scoredEvent struct {
	version  string
	header   string
	score    float32
	scoredAt time.Time
}

// readScored reads a predictions topic to its end: each input offset's prediction, per
// partition, and the number of duplicates.
func readScored(t *testing.T, c *config.Config, topic string) (map[int32]map[int64]scoredEvent, int) {
	t.Helper()
	out := map[int32]map[int64]scoredEvent{}
	dups := 0
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := topics.ReadToEnd(ctx, c.Kafka, []string{topic}, func(recs []record.Record) error {
		for i := range recs {
			var p pipeline.Prediction
			if err := json.Unmarshal(recs[i].Value, &p); err != nil {
				return err
			}
			m := out[p.Source.Partition]
			if m == nil {
				m = map[int64]scoredEvent{}
				out[p.Source.Partition] = m
			}
			if _, dup := m[p.Source.Offset]; dup {
				dups++
				continue
			}
			m[p.Source.Offset] = scoredEvent{p.Model.Version, string(record.HeaderValue(recs[i].Headers, record.HeaderModelVersion)), p.Score, p.ScoredAt}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, dups
}

// isSubsequence reports whether seq appears in order within of.
func isSubsequence(seq, of []string) bool {
	i := 0
	for _, v := range of {
		if i < len(seq) && seq[i] == v {
			i++
		}
	}
	return i == len(seq)
}

// TestIntegrationModelLifecycle swaps the live version ten times under a steady load with
// two instances (one of which cannot load the largest version), runs a shadow for part
// of it, pushes bad models and activates an unknown version on the way, and then checks
// that nothing was lost or scored twice, that versions changed only at activations, and
// that a plain backfill reproduces every (version, score) pair bit for bit.
func TestIntegrationModelLifecycle(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	reg, err := topics.OpenRegistry(ctx, c.Kafka, topics.RegistryOptions{Topic: c.Registry.Topic})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	golden, err := lifecycle.GoldenRows("../../testdata/model/golden.jsonl", cc.Features.Len())
	if err != nil {
		t.Fatal(err)
	}
	push := func(raw []byte) string {
		t.Helper()
		meta, err := lifecycle.Push(ctx, reg, raw, lifecycle.PushOptions{Name: cc.Model.Name, Width: cc.Features.Len(), Golden: golden, By: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return meta.Version
	}
	shipped, err := os.ReadFile("../../testdata/model/fraud.onnx")
	if err != nil {
		t.Fatal(err)
	}
	push(shipped) // the config's model: the instances start with it, and it is activated again below
	v1, v2, v3 := push(lifecycleModel(-3)), push(lifecycleModel(-2)), push(lifecycleModel(-1))
	big := push(onnxtest.Padded(15, 17<<20)) // over 16 MB: many records in the registry
	shadowV := push(lifecycleModel(0))

	a := startLive(t, c, nil)
	cb := *c
	cb.Model.MaxBytes = 8 << 20 // instance B cannot take the big version
	b := startLive(t, &cb, nil)
	waitMembers(t, c, 2)
	base := liveVersion(t, a.reg, "live")
	stopProducing := make(chan struct{})
	events := produceUntilStopped(c, sim.NewStream(31, 0.002), 800, stopProducing)

	applied := []string{base}
	activate := func(version string) {
		t.Helper()
		act, err := lifecycle.Activate(ctx, reg, cc.Model.Name, version, topics.RoleLive, "test")
		if err != nil {
			t.Fatal(err)
		}
		applied = append(applied, act.Version)
		waitVersion(t, a.reg, "live", act.Version)
		if act.Version != big {
			waitVersion(t, b.reg, "live", act.Version)
		}
		time.Sleep(700 * time.Millisecond) // let the new version score a while: load, not a barrier
	}
	rollback := func() {
		t.Helper()
		act, err := lifecycle.Rollback(ctx, reg, cc.Model.Name, "test")
		if err != nil {
			t.Fatal(err)
		}
		applied = append(applied, act.Version)
		waitVersion(t, a.reg, "live", act.Version)
		waitVersion(t, b.reg, "live", act.Version)
		time.Sleep(700 * time.Millisecond)
	}
	activate(v1)
	activate(v2)
	if _, err := lifecycle.Activate(ctx, reg, cc.Model.Name, shadowV, topics.RoleShadow, "test"); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, a.reg, "shadow", shadowV)
	waitVersion(t, b.reg, "shadow", shadowV)
	activate(v3)
	rollback() // v2
	// Bad models and an unknown version are refused on the way; nothing reaches the instances.
	for what, raw := range map[string][]byte{"corrupt": onnxtest.Corrupt(), "wrong width": onnxtest.Logistic(14, make([]float32, 14), 0),
		"NaN": onnxtest.NaNOutput(15), "batch-dependent": onnxtest.BatchDependent(15)} {
		if _, err := lifecycle.Push(ctx, reg, raw, lifecycle.PushOptions{Name: cc.Model.Name, Width: 15, Golden: golden}); err == nil {
			t.Fatalf("a %s model was pushed", what)
		}
	}
	if _, err := lifecycle.Activate(ctx, reg, cc.Model.Name, "ffffffff", topics.RoleLive, "test"); err == nil {
		t.Fatal("an unknown version was activated")
	}
	activate(big) // B refuses it and keeps v2
	if _, err := lifecycle.Activate(ctx, reg, cc.Model.Name, "", topics.RoleShadowOff, "test"); err != nil {
		t.Fatal(err)
	}
	activate(v1)
	activate(base)
	activate(v3)
	rollback() // base
	activate(v2)
	time.Sleep(time.Second) // events keep flowing a moment past the last activation: load, not a barrier
	close(stopProducing)
	res := result(t, events)
	awaitScored(t, c, res.Events)
	for _, j := range []*liveJob{a, b} {
		if err := j.stop(); err != nil {
			t.Fatalf("instance stopped with %v", err)
		}
	}
	if got := counterValue(t, b.reg, "streamscore_model_load_failures_total"); got != 1 {
		t.Fatalf("instance B counted %v load failures, want 1 (the big version)", got)
	}

	live, dups := readScored(t, c, c.Topics.Predictions)
	counts := finalOutputs(t, c).Counts()
	missing := res.Events - counts.Predictions - counts.DeadLettered
	checkVersions(t, live, applied)
	shadowed, flips := checkShadow(t, c, live, shadowV)
	gotFlips := counterValue(t, a.reg, "streamscore_shadow_alert_disagreements_total") + counterValue(t, b.reg, "streamscore_shadow_alert_disagreements_total")

	bf, err := Backfill(ctx, cc, BackfillOptions{Out: "topic:" + c.Topics.Backfill, BatchSize: 256}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, c.Kafka, "topic:"+c.Topics.Predictions, "topic:"+c.Topics.Backfill, audit.Options{Show: 5, Threshold: c.Threshold})
	if err != nil {
		t.Fatal(err)
	}
	whatIf := filepath.Join(t.TempDir(), "whatif.jsonl")
	if _, err := Backfill(ctx, cc, BackfillOptions{Out: "file:" + whatIf, BatchSize: 64, Model: cc.Model.Name + "@" + v1[:6]}, zap.NewNop(), nil); err != nil {
		t.Fatal(err)
	}
	cmp, err := audit.Verify(ctx, c.Kafka, "topic:"+c.Topics.Predictions, "file:"+whatIf, audit.Options{Threshold: c.Threshold})
	if err != nil {
		t.Fatal(err)
	}
	bigScored := 0
	for _, byOff := range live {
		for _, e := range byOff {
			if e.version == big {
				bigScored++
			}
		}
	}
	report(t, "model lifecycle: 2 instances, %d activations over %d partitions (a %d-byte version refused by one instance, %d events scored by the other with it), input %d, predictions %d, dead letters %d, missing %d, duplicates %d; shadow %d predictions, alert disagreements %d (metric %v); backfill by history %s: joined %d, score mismatches %d, version pairs %d; what-if %s: %d version pairs",
		len(applied)-1, len(live), 17<<20, bigScored, res.Events, counts.Predictions, counts.DeadLettered, missing, dups, shadowed, flips, gotFlips, bf.ModelVersion, rep.Joined, rep.Mismatches, len(rep.Pairs), v1, len(cmp.Pairs))
	if bigScored == 0 {
		t.Fatal("no event was scored by the version over 16 MB")
	}
	if missing != 0 || dups != 0 || counts.Duplicates != 0 {
		t.Fatalf("%d events without an output, %d duplicate predictions", missing, dups)
	}
	if gotFlips != float64(flips) {
		t.Fatalf("shadow alert disagreements: metric %v, recount %d", gotFlips, flips)
	}
	if !rep.OK() || len(rep.Pairs) != 0 || rep.Joined != counts.Predictions {
		t.Fatalf("backfill by history does not reproduce live scoring: %+v", rep)
	}
	if !cmp.OK() || len(cmp.Pairs) == 0 {
		t.Fatalf("what-if replay: %+v, want OK with version pairs", cmp)
	}
}

// checkVersions: every prediction names its version in its JSON and its header, every
// partition's versions change only at activations and in their order, and no batch of a
// partition mixes versions.
func checkVersions(t *testing.T, live map[int32]map[int64]scoredEvent, applied []string) {
	t.Helper()
	for p, byOff := range live {
		offs := make([]int64, 0, len(byOff))
		for o := range byOff {
			offs = append(offs, o)
		}
		slices.Sort(offs)
		var seq []string
		batches := map[time.Time]string{}
		for _, o := range offs {
			e := byOff[o]
			if e.header != e.version {
				t.Fatalf("partition %d offset %d: header version %q, JSON %q", p, o, e.header, e.version)
			}
			if v, ok := batches[e.scoredAt]; ok && v != e.version {
				t.Fatalf("partition %d: one batch (scored at %v) has versions %s and %s", p, e.scoredAt, v, e.version)
			}
			batches[e.scoredAt] = e.version
			if len(seq) == 0 || seq[len(seq)-1] != e.version {
				seq = append(seq, e.version)
			}
		}
		if !isSubsequence(seq, applied) {
			t.Fatalf("partition %d went through versions %v, which is not in the order of the activations %v", p, seq, applied)
		}
		if len(seq) < 4 {
			t.Fatalf("partition %d saw only the versions %v: the swaps did not happen under load", p, seq)
		}
	}
}

// checkShadow: the shadow topic has one prediction per live prediction over a stretch of
// each partition, with the shadow's version, and returns how many there are and how
// many disagree with live about the alert.
func checkShadow(t *testing.T, c *config.Config, live map[int32]map[int64]scoredEvent, version string) (n, flips int) {
	t.Helper()
	shadow, dups := readScored(t, c, c.Topics.Shadow)
	if dups != 0 {
		t.Fatalf("%d duplicate shadow predictions", dups)
	}
	for p, byOff := range shadow {
		offs := make([]int64, 0, len(byOff))
		for o, e := range byOff {
			if e.version != version || e.header != version {
				t.Fatalf("shadow prediction of %d@%d by %s (header %s), want %s", p, o, e.version, e.header, version)
			}
			if _, ok := live[p][o]; !ok {
				t.Fatalf("shadow prediction of %d@%d has no live prediction", p, o)
			}
			offs = append(offs, o)
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		first, last := offs[0], offs[len(offs)-1]
		for o, e := range live[p] {
			if o < first || o > last {
				continue
			}
			s, ok := byOff[o]
			if !ok {
				t.Fatalf("partition %d: offset %d, inside the shadowed stretch %d..%d, has no shadow prediction", p, o, first, last)
			}
			if (e.score >= float32(c.Threshold)) != (s.score >= float32(c.Threshold)) {
				flips++
			}
		}
		n += len(offs)
	}
	if n == 0 || len(shadow) != len(live) {
		t.Fatalf("shadow predictions in %d partitions of %d (%d in all)", len(shadow), len(live), n)
	}
	return n, flips
}

// produceUntilStopped produces events at rate, a second's worth at a time, until stop is
// closed, so that events flow during every activation however long the activations take
// on a loaded machine; the channel receives the totals. Labels are held back as the
// simulated clock would (a week), never written early.
func produceUntilStopped(c *config.Config, st *sim.Stream, rate float64, stop <-chan struct{}) <-chan produced {
	ch := make(chan produced, 1)
	go func() {
		var total sim.ProduceResult
		for {
			r, err := produce(c, st, int(rate), rate, true)
			total.Events, total.Bad, total.Labels = total.Events+r.Events, total.Bad+r.Bad, total.Labels+r.Labels
			if err != nil {
				ch <- produced{total, err}
				return
			}
			select {
			case <-stop:
				ch <- produced{total, nil}
				return
			default:
			}
		}
	}()
	return ch
}
