package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/topics"
)

var killEvents = flag.Int("killtest.events", 60_000, "events produced during the SIGKILL test (the full run: 1000000)")

// buildBinary compiles streamscore once per test into a temporary folder.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "streamscore")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeConfig writes c as a YAML file the binary can load.
func writeConfig(t testing.TB, c *config.Config) string {
	t.Helper()
	p, err := writeRunConfig(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startProcess(t testing.TB, bin, cfg string, logf *os.File) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", cfg, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestIntegrationSIGKILLLosesNothing produces a stream while the pipeline process is killed
// with SIGKILL at random moments ten times and restarted; afterwards every input offset
// must have a prediction or a dead letter. Duplicates (allowed: at-least-once) are counted.
func TestIntegrationSIGKILLLosesNothing(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	killLoop(t, c, "at-least-once")
}

// TestIntegrationExactlyOnceUnderSIGKILL is the same kill loop with delivery: exactly-once:
// a read_committed reader must see exactly one output per input offset, no duplicate.
func TestIntegrationExactlyOnceUnderSIGKILL(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	c.TransactionalID = "tx-" + c.Group // kept across restarts: the new process fences the old
	s := killLoop(t, c, "exactly-once")
	if s.Duplicates != 0 {
		t.Fatalf("exactly-once: %d duplicates seen by a read_committed reader", s.Duplicates)
	}
}

func killLoop(t *testing.T, c *config.Config, delivery string) *demoSummary {
	t.Helper()
	c.Delivery = delivery
	createInputTopics(t, c, 3)
	c.InstanceID = "kill-test" // static membership: a restart takes its partitions back at once
	c.SessionTimeout = 6 * time.Second
	c.Metrics.Address = ""
	cfg := writeConfig(t, c)
	bin := buildBinary(t)
	logf, err := os.Create(filepath.Join(t.TempDir(), "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	produced := make(chan sim.ProduceResult, 1)
	go func() {
		// ~12 s of input at a steady rate, so the kills land mid-stream.
		produced <- produceAt(t, c, *killEvents, float64(*killEvents)/12, 0.002, 41)
	}()
	rng := rand.New(rand.NewPCG(4, 1))
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	outputs := func() int64 {
		n, err := adm.EndOffsetsSum(context.Background(), c.Topics.Predictions)
		if err != nil {
			return -1 // not created yet
		}
		return n
	}
	kills, working := 0, 0
	for ; kills < 10; kills++ {
		before := outputs()
		cmd := startProcess(t, bin, cfg, logf)
		// Kill it while it works: once it has written something (its start-up rebuilds
		// window state and reads the labels), at a random moment after.
		for deadline := time.Now().Add(5 * time.Second); outputs() <= before && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond) // polling the broker, not a barrier
		}
		if outputs() > before {
			working++
		}
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond) // a random moment to kill at
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // killed: the exit status is the signal
	}
	if working < 5 {
		t.Fatalf("only %d of %d processes wrote anything before they were killed: the test did not kill mid-stream", working, kills)
	}
	res := <-produced
	final := startProcess(t, bin, cfg, logf)
	out := awaitOutputs(t, c, res.Events, 2*time.Second)
	if err := final.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := final.Wait(); err != nil {
		t.Fatalf("pipeline did not exit cleanly on SIGTERM: %v (log: %s)", err, logf.Name())
	}
	s := &demoSummary{}
	out.fill(s)
	missing := res.Events - (s.Predictions + s.DeadLettered)
	report(t, "kill test (%s): %d SIGKILLs (%d while writing outputs); input events %d, outputs %d (predictions %d, dead letters %d), missing %d, duplicates %d",
		delivery, kills, working, res.Events, s.Predictions+s.DeadLettered+s.Duplicates, s.Predictions, s.DeadLettered, missing, s.Duplicates)
	if missing != 0 {
		t.Fatalf("%d input events have no output after %d SIGKILLs", missing, kills)
	}
	if n := behind(t, c); n != 0 {
		t.Fatalf("%d records uncommitted after the final graceful stop", n)
	}
	return s
}

// TestIntegrationBrokerRestart stops and restarts a (second, private) Apache Kafka broker
// in the middle of a run; the pipeline rides it out and loses nothing.
func TestIntegrationBrokerRestart(t *testing.T) {
	realBrokers(t)
	port := 39000 + rand.IntN(500)*2
	env := append(os.Environ(), fmt.Sprintf("KAFKA_PORT=%d", port), "KAFKA_KEEP_DATA=1",
		"KAFKA_STATE_DIR="+filepath.Join(t.TempDir(), "kafka"))
	kafka := func(args ...string) {
		t.Helper()
		cmd := exec.Command("../../scripts/kafka.sh", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kafka.sh %v: %v\n%s", args, err, out)
		}
	}
	kafka("start")
	t.Cleanup(func() { kafka("stop") })
	c := testConfig(t, []string{fmt.Sprintf("127.0.0.1:%d", port)})
	createInputTopics(t, c, 3)
	job := startLive(t, c, nil)

	produced := make(chan sim.ProduceResult, 1)
	go func() { produced <- produceAt(t, c, 40_000, 4_000, 0.002, 51) }() // ~10 s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for job.stats.Done.Load() < 8_000 { // wait for the run to be well under way
		select {
		case <-ctx.Done():
			t.Fatal("pipeline made no progress before the restart")
		case <-time.After(20 * time.Millisecond):
		}
	}
	kafka("stop")
	before := job.stats.Done.Load()
	kafka("start")
	res := <-produced
	out := awaitOutputs(t, c, res.Events, 2*time.Second)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	s := &demoSummary{}
	out.fill(s)
	report(t, "broker restart: %d events done before the stop; input %d, predictions %d, dead letters %d, missing %d, duplicates %d",
		before, res.Events, s.Predictions, s.DeadLettered, res.Events-s.Predictions-s.DeadLettered, s.Duplicates)
	if s.Predictions+s.DeadLettered != res.Events {
		t.Fatalf("lost events across a broker restart: %+v for %d", s, res.Events)
	}
}
