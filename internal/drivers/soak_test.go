//go:build integration

package drivers

// The fault soak (issue 23: broker failures under load: no crash, no exit, nothing lost,
// recovery measured) runs two or three `streamscore run` processes of one consumer group
// on the 3-node cluster of the cluster tests while events flow at a steady rate, and puts
// them through random faults, one after another, seeded:
//
//	broker kill:   scripts/kafka.sh kill-node I, a few seconds down after the fleet
//	               scores again, then start-node I;
//	broker pause:  pause-node I (SIGSTOP: a hung broker, sockets open, no answer) for 2
//	               to 20 s, then resume-node I;
//	instance kill: SIGKILL of an instance, restarted up to 2 s later.
//
// Half the broker faults also SIGKILL and restart an instance while the node is down or
// paused, so that a process starts up against a degraded cluster.
//
// One phase per delivery mode (at-least-once, exactly-once) and input rate of
// STREAMSCORE_SOAK_RATES (e.g. 1000,5000); unset, as in make test, one exactly-once phase
// at 1,000 events/s with pauses and instance kills only (see phases). Each phase starts
// faults for
// STREAMSCORE_SOAK_MINUTES (default 0.5; at least one fault); then the issue's own
// scenario: two at-least-once instances at 5,000 events/s, kill-node 1, SIGKILL of an
// instance and its restart while the node is down (up to 15 s after the kill), start-node 1.
//
// Verdicts: no instance exits or panics unless the soak killed it (its exit status, and
// "panic:"/"fatal error:" lines in its log); every restarted instance joins and scores
// again; once the input stops and the fleet stops with SIGTERM (clean exits), every input
// event has a prediction or a dead letter (read_committed) and nothing is left
// uncommitted; under exactly-once no event has two. Measured, never judged: per fault and
// per input partition, the time from the fault until a prediction for an event written
// after it is read back, with medians and worst cases per kind of fault, in the test log
// and in $STREAMSCORE_TEST_REPORT.
//
// The seed (random unless STREAMSCORE_SOAK_SEED is set) is logged at the start and named in
// every failure; STREAMSCORE_SOAK_SEEDS=N runs N seeds in turn (seed, seed+1, ...). It
// skips unless STREAMSCORE_TEST_CLUSTER_BROKERS is set, like the cluster tests (see
// cluster_test.go for the variables and for running it by hand), and is built with the
// integration tag:
//
//	go test -tags integration -count=1 -timeout 60m -run TestIntegrationSoak -v ./internal/drivers

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
)

const soakPartitions = 6 // of the input and labels topics

// soakPhase is one fleet, one stream and the faults put through them.
type soakPhase struct {
	name      string
	delivery  string
	rate      float64 // input events/s
	instances int
	faults    func(s *soak)
}

// soakOptions reads STREAMSCORE_SOAK_*.
type soakOptions struct {
	seeds  []uint64
	window time.Duration // per phase: faults start while it lasts
	rates  []float64     // nil: the short soak of make test
}

// deliveryRate is one random-fault phase's delivery mode and input rate, and whether its
// faults include broker kills (a killed node's restart is the longest fault by far).
type deliveryRate struct {
	delivery    string
	rate        float64
	brokerKills bool
}

// phases are the random-fault phases: every delivery mode at every rate of
// STREAMSCORE_SOAK_RATES, with every kind of fault; or, when it is unset (make test's
// few minutes), exactly-once at 1,000 events/s with broker pauses and instance kills only:
// issue 23's scenario, which follows, is at-least-once at 5,000 events/s with a broker
// kill, so each mode, each rate and each kind of fault still runs once.
func (o soakOptions) phases() []deliveryRate {
	if o.rates == nil {
		return []deliveryRate{{config.DeliveryExactlyOnce, 1000, false}}
	}
	var ps []deliveryRate
	for _, d := range []string{config.DeliveryAtLeastOnce, config.DeliveryExactlyOnce} {
		for _, r := range o.rates {
			ps = append(ps, deliveryRate{d, r, true})
		}
	}
	return ps
}

func soakConfig(t *testing.T) soakOptions {
	t.Helper()
	o := soakOptions{window: 30 * time.Second}
	seed, n := rand.Uint64()%1_000_000, 1
	var err error
	if v := os.Getenv("STREAMSCORE_SOAK_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("STREAMSCORE_SOAK_SEED=%q: want a whole number", v)
		}
	}
	if v := os.Getenv("STREAMSCORE_SOAK_SEEDS"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("STREAMSCORE_SOAK_SEEDS=%q: want how many seeds to run, 1 or more", v)
		}
	}
	for i := range n {
		o.seeds = append(o.seeds, seed+uint64(i))
	}
	if v := os.Getenv("STREAMSCORE_SOAK_MINUTES"); v != "" {
		m, err := strconv.ParseFloat(v, 64)
		if err != nil || m <= 0 {
			t.Fatalf("STREAMSCORE_SOAK_MINUTES=%q: want the minutes of faults per phase, e.g. 0.5 or 30", v)
		}
		o.window = time.Duration(m * float64(time.Minute))
	}
	if v := os.Getenv("STREAMSCORE_SOAK_RATES"); v != "" {
		o.rates = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || r <= 0 {
				t.Fatalf("STREAMSCORE_SOAK_RATES=%q: want input rates in events/s, comma separated", v)
			}
			o.rates = append(o.rates, r)
		}
	}
	return o
}

// TestIntegrationSoak is the fault soak: see the comment at the top of this file.
func TestIntegrationSoak(t *testing.T) {
	if os.Getenv("STREAMSCORE_TEST_CLUSTER_BROKERS") == "" {
		t.Skip("SKIPPED: the fault soak needs a 3-node Apache Kafka cluster: set STREAMSCORE_TEST_CLUSTER_BROKERS, _NODES and _PORT (make test does)")
	}
	waitBound(t)
	clusterMu.Lock()
	defer clusterMu.Unlock()
	o := soakConfig(t)
	bin := buildBinary(t)
	for _, seed := range o.seeds {
		t.Logf("soak seed %d (replay: STREAMSCORE_SOAK_SEED=%d), %v of faults per phase, phases %v", seed, seed, o.window, o.phases())
		rng := rand.New(rand.NewPCG(seed, 23))
		var phases []soakPhase
		for _, dr := range o.phases() {
			first := len(phases) // every kind of fault comes first in some phase
			phases = append(phases, soakPhase{name: fmt.Sprintf("%s-%.0f", dr.delivery, dr.rate), delivery: dr.delivery, rate: dr.rate,
				instances: 2 + rng.IntN(2), faults: func(s *soak) { s.randomFaults(o.window, int(seed%3)+first, dr.brokerKills) }})
		}
		phases = append(phases, soakPhase{name: "issue-23", delivery: config.DeliveryAtLeastOnce, rate: 5000,
			instances: 2, faults: (*soak).issueScenario})
		for i, ph := range phases {
			t.Run(fmt.Sprintf("seed-%d/%s", seed, ph.name), func(t *testing.T) {
				runSoakPhase(t, bin, seed, uint64(i), ph)
			})
		}
	}
}

// randomFaults starts faults, one after another with 1 to 4 s between them, until window
// has passed; the first is of kind first (mod 3), the others random.
func (s *soak) randomFaults(window time.Duration, first int, kills bool) {
	s.t.Helper()
	end := time.Now().Add(window)
	kinds, skip := 3, 0 // 0: broker kill, 1: broker pause, 2: instance kill
	if !kills {
		kinds, skip = 2, 1
	}
	for i := 0; i == 0 || time.Now().Before(end); i++ {
		kind := skip + s.rng.IntN(kinds)
		if i == 0 {
			kind = skip + first%kinds
		}
		node := int32(1 + s.rng.IntN(s.k.nodes))
		switch kind {
		case 0:
			s.killBroker(node)
		case 1:
			s.pauseBroker(node)
		default:
			s.killInstance(s.names[s.rng.IntN(len(s.names))])
		}
		s.pace(time.Second + time.Duration(s.rng.IntN(3000))*time.Millisecond)
	}
}

// issueScenario is issue 23's own: kill-node 1; while it is down, SIGKILL an instance (at
// a seeded moment up to 15 s after the kill: before or after the leaders have moved) and
// start it again, and wait until it scores; then start-node 1.
func (s *soak) issueScenario() {
	s.t.Helper()
	victim := s.names[s.rng.IntN(len(s.names))]
	old := s.awaitGroup(nil)
	kill := s.watch("broker kill", fmt.Sprintf("node 1 (+ SIGKILL and restart of %s while down)", victim), nil)
	s.note("SIGKILL broker node 1")
	s.k.killNode(1)
	s.pace(time.Duration(s.rng.IntN(15_000)) * time.Millisecond)
	s.restartInstance(victim)
	s.follow(kill)
	s.awaitResumed(victim, old[victim].id)
	s.note("starting broker node 1")
	s.k.startNode(1)
	s.follow(s.watch("broker restart", "node 1", nil))
	s.awaitInSync()
}

// runSoakPhase runs one phase: topics, input at ph.rate, the fleet, the faults, then the
// drain, the graceful stop and the verdicts.
func runSoakPhase(t *testing.T, bin string, seed, index uint64, ph soakPhase) {
	k, c, _ := clusterJob(t, ph.delivery, soakPartitions)
	s := &soak{t: t, seed: seed, k: k, c: c, f: newFleetOf(t, c, bin), rng: rand.New(rand.NewPCG(seed, index)),
		start: time.Now(), paused: map[int32]bool{}}
	t.Cleanup(func() {
		for id := range s.paused {
			if err := k.kafkaSh("resume-node", id); err != nil {
				t.Errorf("resuming node %d after the phase: %v", id, err)
			}
		}
		if t.Failed() {
			measured := "none"
			if s.flow != nil {
				measured = s.flow.byKind(s.faults)
			}
			report(t, "fault soak seed %d, %s at %.0f events/s, %d instances: FAILED after %.0fs (replay with STREAMSCORE_SOAK_SEED=%d); faults [%s]; recovery measured until then: %s",
				seed, ph.delivery, ph.rate, ph.instances, time.Since(s.start).Seconds(), seed, s.faultList(), measured)
		}
	})
	s.awaitInSync() // an earlier phase's restarted node may still be catching up
	s.awaitTopics(c.Topics.Input[0], c.Topics.Labels)

	stop := make(chan struct{})
	input := produceUntil(c, sim.NewStream(seed, 0.002), int(ph.rate), ph.rate, stop)
	inputDone := false
	t.Cleanup(func() { // a failed phase still waits for its producer: no goroutine outlives it
		if !inputDone {
			close(stop)
			<-input
		}
	})
	for i := range ph.instances {
		s.names = append(s.names, fmt.Sprintf("i%d", i+1))
		s.f.start(s.names[i])
	}
	s.awaitGroup(nil)
	s.waitFor("the first predictions", soakLiveness, func() bool {
		n, ok := k.endSum(c.Topics.Predictions)
		return ok && n > 0
	})
	s.flow = startFlow(t, c)
	s.note("%s at %.0f events/s, %d instances (%v): faults begin", ph.delivery, ph.rate, ph.instances, s.names)
	ph.faults(s)

	close(stop)
	inputDone = true
	p := <-input
	if p.err != nil {
		s.fatalf("producing the input: %v", p.err)
	}
	s.verdict(ph, p.res.Events)
}

// faultList names the faults done so far.
func (s *soak) faultList() string {
	var out []string
	for _, r := range s.faults {
		if r.kind != "restarted instance scores" { // a check after a fault, not one
			out = append(out, r.kind+" "+r.target)
		}
	}
	return strings.Join(out, ", ")
}

// verdict drains the fleet, stops it gracefully, reports and judges the phase.
func (s *soak) verdict(ph soakPhase, produced int64) {
	s.t.Helper()
	var in int64
	s.waitFor("reading the input's end offsets", soakLiveness, func() bool {
		var ok bool
		in, ok = s.k.endSum(s.c.Topics.Input[0])
		return ok
	})
	if in != produced {
		s.fatalf("the producer had %d events acknowledged but the input topic holds %d records", produced, in)
	}
	s.waitFor(fmt.Sprintf("outputs for all %d input events", in), soakLiveness, func() bool {
		return s.flow.out.Scored() >= in || s.flow.failed() != nil
	})
	if err := s.flow.failed(); err != nil {
		s.fatalf("following the outputs: %v", err)
	}
	s.stopAll()
	var panics []string
	for _, name := range s.names {
		for _, l := range s.panics(name) {
			panics = append(panics, name+": "+l)
		}
	}
	out := finalOutputs(s.t, s.c).Counts()
	missing := in - (out.Predictions + out.DeadLettered)
	report(s.t, "fault soak seed %d, %s at %.0f events/s, %d instances, %.0fs: faults [%s]; input %d, predictions %d, dead letters %d, missing %d, duplicates %d, panics %d; recovery per input partition (fault → first prediction read back for an event written after it): %s",
		s.seed, ph.delivery, ph.rate, ph.instances, time.Since(s.start).Seconds(), s.faultList(),
		in, out.Predictions, out.DeadLettered, missing, out.Duplicates, len(panics), s.flow.byKind(s.faults))
	if len(panics) > 0 {
		s.fatalf("panics in the instances' logs: %q", panics)
	}
	if missing != 0 {
		s.fatalf("%d input events have no output after the faults", missing)
	}
	if ph.delivery == config.DeliveryExactlyOnce && out.Duplicates != 0 {
		s.fatalf("exactly-once: %d duplicates seen by a read_committed reader", out.Duplicates)
	}
	if n := behind(s.t, s.c); n != 0 {
		s.fatalf("%d records uncommitted after the graceful stop", n)
	}
}
