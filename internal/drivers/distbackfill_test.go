//go:build integration

package drivers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/testenv"
)

// TestIntegrationDistributedBackfillUnderSIGKILL shares one backfill job between three
// processes of the real binary over a 6-partition input, SIGKILLs one of them once it has
// committed outputs of its own, and starts it again. Every input offset must be scored
// exactly once in the job's output topic (read_committed), all processes must exit 0, and
// the scores must be bit-identical to a single-process backfill's.
func TestIntegrationDistributedBackfillUnderSIGKILL(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	waitBound(t)
	c.IncludeFeatures = true
	c.SessionTimeout = 6 * time.Second
	createInputTopics(t, c, 6)
	res := produceT(t, c, 40_000, 0.002, 7)
	cfg := writeConfig(t, c)
	bin := buildBinary(t)
	group := "bf-" + c.Group
	out := c.Topics.Backfill
	args := []string{"backfill", "--config", cfg, "--log-level", "warn", "--group", group,
		"--out", "topic:" + out, "--job-topic", "jobs-" + c.Group,
		"--batch-size", "32"} // small batches: a slower job, killed midway; scores do not depend on it
	dir := t.TempDir()
	start := func(name string) (*exec.Cmd, string) {
		logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
		f, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		cmd := exec.Command(bin, append(args, "--instance", name)...)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, logPath
	}
	began := time.Now()
	procs := map[string]*exec.Cmd{}
	logs := map[string]string{}
	for _, name := range []string{"p0", "p1", "p2"} {
		procs[name], logs[name] = start(name)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.Process.Kill()
		}
	})

	// Kill p1 once it has committed outputs of its own, while the job is still running.
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(c.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	// The evidence: offsets committed on partitions while p1 held them, measured from the
	// committed offset when it was first seen holding each (what a previous owner did).
	baseline := map[string]int64{}
	var committedByP1 int64
	testenv.Eventually(t, time.Minute, func() error {
		if committedByP1 = committedBy(t, adm, group, "p1", baseline); committedByP1 == 0 {
			return fmt.Errorf("p1 committed nothing yet; logs:\n%s", tails(logs))
		}
		return nil
	})
	if err := procs["p1"].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = procs["p1"].Wait() // killed: the exit status is the signal
	done := jobDone(t, adm, group)
	if done >= res.Events {
		t.Fatalf("the job was done (%d offsets committed) before p1 was killed: the test proves nothing", done)
	}
	procs["p1"], logs["p1-restart"] = start("p1")

	for name, p := range procs {
		if err := waitTimeout(p, 3*time.Minute); err != nil {
			t.Fatalf("%s: %v; logs:\n%s", name, err, tails(logs))
		}
	}
	elapsed := time.Since(began)
	final := audit.NewOutputs(out, out+".drift", out+".dlq") // drift records count as alerts: not checked
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := final.ReadToEnd(ctx, c.Kafka); err != nil {
		t.Fatal(err)
	}
	s := final.Counts()
	missing := res.Events - s.Predictions - s.DeadLettered
	summary, _ := os.ReadFile(logs["p0"])
	report(t, "distributed backfill: 3 processes, 6 partitions, %d events; p1 SIGKILLed after committing %d offsets of its own (job %d committed), restarted; missing %d, duplicates %d, dead letters %d; %.1fs; p0 printed: %s",
		res.Events, committedByP1, done, missing, s.Duplicates, s.DeadLettered, elapsed.Seconds(), strings.TrimSpace(lastLines(string(summary), 2)))
	if missing != 0 || s.Duplicates != 0 {
		t.Fatalf("missing %d, duplicates %d: want every input offset scored exactly once", missing, s.Duplicates)
	}

	// The same input scored live: verify holds bit for bit (scores and features).
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	live := startLive(t, c, log)
	awaitScored(t, c, res.Events)
	if err := live.stop(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, c.Kafka, "topic:"+out, "topic:"+c.Topics.Predictions, audit.Options{Show: 5, Threshold: c.Threshold})
	if err != nil {
		t.Fatal(err)
	}
	report(t, "distributed backfill vs live: joined %d, missing %d/%d, score mismatches %d, feature mismatches %d",
		rep.Joined, rep.MissingInA, rep.MissingInB, rep.Mismatches, rep.FeatureMismatches)
	if !rep.OK() || rep.Joined != s.Predictions {
		t.Fatalf("the distributed backfill and live scoring disagree: %+v", *rep)
	}
}

// committedBy sums, over the partitions that member instance holds in group now, how far
// the group's committed offset moved since baseline (which it fills in for a partition
// first seen held).
func committedBy(t *testing.T, adm *kadm.Client, group, instance string, baseline map[string]int64) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return 0 // the group may not exist yet
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0
	}
	var n int64
	for _, m := range gs[group].Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok || m.InstanceID == nil || *m.InstanceID != instance {
			continue
		}
		for _, tp := range ca.Topics {
			for _, p := range tp.Partitions {
				at := int64(0)
				if o, ok := offs.Lookup(tp.Topic, p); ok {
					at = max(o.At, 0)
				}
				k := fmt.Sprintf("%s/%d", tp.Topic, p)
				if b, seen := baseline[k]; seen {
					n += at - b
				} else {
					baseline[k] = at
				}
			}
		}
	}
	return n
}

// jobDone sums the group's committed offsets.
func jobDone(t *testing.T, adm *kadm.Client, group string) int64 {
	t.Helper()
	offs, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += max(o.At, 0) })
	return n
}

// waitTimeout waits for cmd, which must exit 0, within d.
func waitTimeout(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		return fmt.Errorf("still running after %v", d)
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], " | ")
}

// tails is the end of each log, for a failure message.
func tails(logs map[string]string) string {
	var b strings.Builder
	for name, p := range logs {
		s, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "--- %s:\n%s\n", name, lastLines(string(s), 15))
	}
	return b.String()
}
