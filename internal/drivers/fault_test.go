//go:build integration

package drivers

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

	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/topics"
)

var killEvents = flag.Int("killtest.events", 60_000, "events produced during the SIGKILL test (the full run: 1000000)")

// buildBinary compiles streamscore once per test into a temporary folder.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "streamscore")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/streamscore").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeConfig writes c, with an absolute model path, as a YAML file the binary can load.
func writeConfig(t testing.TB, c *config.Config) string {
	t.Helper()
	abs, err := filepath.Abs(c.Resolve(c.Model.Path))
	if err != nil {
		t.Fatal(err)
	}
	cc := *c
	cc.Model.Path = abs
	b, err := yaml.Marshal(&cc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "streamscore.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
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

func killLoop(t *testing.T, c *config.Config, delivery string) audit.Counts {
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

	// Input keeps arriving at a steady rate (at least -killtest.events of it, ~12 s) until
	// the last kill, so that every process started has work and is killed while writing.
	stopInput := make(chan struct{})
	input := produceUntil(c, sim.NewStream(41, 0.002), *killEvents, float64(*killEvents)/12, stopInput)
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
	kills := 0
	for ; kills < 10; kills++ {
		before := outputs()
		cmd := startProcess(t, bin, cfg, logf)
		// Kill it while it works: once it has written something (its start-up rebuilds
		// window state and reads the labels), at a random moment after. However loaded the
		// machine, the evidence comes first; the deadline only catches a process that
		// never writes.
		if err := testenv.Poll(2*time.Minute, func() error {
			if outputs() <= before {
				return fmt.Errorf("process %d wrote no output yet (log: %s)", kills+1, logf.Name())
			}
			return nil
		}); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond) // a random moment to kill at
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // killed: the exit status is the signal
	}
	close(stopInput)
	res := result(t, input)
	final := startProcess(t, bin, cfg, logf)
	awaitScored(t, c, res.Events)
	if err := final.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := final.Wait(); err != nil {
		t.Fatalf("pipeline did not exit cleanly on SIGTERM: %v (log: %s)", err, logf.Name())
	}
	s := finalOutputs(t, c).Counts()
	missing := res.Events - (s.Predictions + s.DeadLettered)
	report(t, "kill test (%s): %d SIGKILLs, each while writing outputs; input events %d, outputs %d (predictions %d, dead letters %d), missing %d, duplicates %d",
		delivery, kills, res.Events, s.Predictions+s.DeadLettered+s.Duplicates, s.Predictions, s.DeadLettered, missing, s.Duplicates)
	if missing != 0 {
		t.Fatalf("%d input events have no output after %d SIGKILLs", missing, kills)
	}
	if n := behind(t, c); n != 0 {
		t.Fatalf("%d records uncommitted after the final graceful stop", n)
	}
	return s
}

// produceUntil continues st on a goroutine at rate events/s, in half-second calls, until
// stop is closed and at least minEvents are written; then the labels still owed. The
// channel receives the total.
func produceUntil(c *config.Config, st *sim.Stream, minEvents int, rate float64, stop <-chan struct{}) <-chan produced {
	ch := make(chan produced, 1)
	go func() {
		var total sim.ProduceResult
		add := func(r sim.ProduceResult) {
			total.Events += r.Events
			total.Bad += r.Bad
			total.Labels += r.Labels
		}
		stopped := false
		for !stopped || total.Events < int64(minEvents) {
			r, err := produce(c, st, max(1, int(rate/2)), rate, true)
			add(r)
			if err != nil {
				ch <- produced{total, err}
				return
			}
			select {
			case <-stop:
				stopped = true
			default:
			}
		}
		r, err := produce(c, st, 0, 0, false) // the simulation ends: the owed labels follow
		add(r)
		ch <- produced{total, err}
	}()
	return ch
}

// TestIntegrationBrokerRestart stops and restarts a (second, private) Apache Kafka broker
// in the middle of a run; the pipeline rides it out and loses nothing.
func TestIntegrationBrokerRestart(t *testing.T) {
	realBrokers(t)
	waitBound(t)                     // its own broker
	port := 28000 + rand.IntN(400)*2 // below the ephemeral range (32768-60999): no client socket holds it
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

	input := produceAsync(c, sim.NewStream(51, 0.002), 40_000, 4_000) // ~10 s
	testenv.Eventually(t, time.Minute, func() error {                 // wait for the run to be well under way
		if n := job.stats.Done.Load(); n < 8_000 {
			return fmt.Errorf("the pipeline made too little progress before the restart: %d of 8000 events done", n)
		}
		return nil
	})
	kafka("stop")
	before := job.stats.Done.Load()
	kafka("start")
	res := result(t, input)
	awaitScored(t, c, res.Events)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	s := finalOutputs(t, c).Counts()
	report(t, "broker restart: %d events done before the stop; input %d, predictions %d, dead letters %d, missing %d, duplicates %d",
		before, res.Events, s.Predictions, s.DeadLettered, res.Events-s.Predictions-s.DeadLettered, s.Duplicates)
	if s.Predictions+s.DeadLettered != res.Events {
		t.Fatalf("lost events across a broker restart: %+v for %d", s, res.Events)
	}
}
