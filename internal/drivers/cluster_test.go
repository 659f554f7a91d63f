//go:build integration

package drivers

// The cluster fault tests (issue 16) run streamscore on a real 3-node Apache Kafka cluster
// (KRaft, replication factor 3, min.insync.replicas 2) as `streamscore run` processes of one
// consumer group while events flow, and put one stream through, in turn:
//
//	scale 1 → 3 instances;
//	(a) SIGKILL of the broker that leads the most input partitions (the group coordinator
//	    when that is a tie), scoring on with it down, then its restart;
//	(b) SIGKILL of an instance while it writes outputs, then its restart;
//	scale 3 → 1 instances;
//
// then the input stops, the last instance scores what is left and stops with SIGTERM, and
// every output topic is read to its end: every input record must have a prediction or a
// dead letter (missing 0), and under delivery: exactly-once no record may have two.
//
// They skip unless STREAMSCORE_TEST_CLUSTER_BROKERS is set; make test starts the cluster
// and sets it, with STREAMSCORE_TEST_CLUSTER_NODES and STREAMSCORE_TEST_CLUSTER_PORT, which
// the tests pass to scripts/kafka.sh (KAFKA_NODES, KAFKA_PORT) to kill and restart nodes.
// By hand:
//
//	KAFKA_NODES=3 KAFKA_PORT=29192 scripts/kafka.sh start
//	STREAMSCORE_TEST_CLUSTER_BROKERS=127.0.0.1:29192,127.0.0.1:29202,127.0.0.1:29212 \
//	STREAMSCORE_TEST_CLUSTER_NODES=3 STREAMSCORE_TEST_CLUSTER_PORT=29192 \
//	  go test -count=1 -run TestIntegrationCluster -v ./internal/drivers
//	KAFKA_NODES=3 KAFKA_PORT=29192 scripts/kafka.sh stop
//
// Size: by default one round (one kill of each kind, a few thousand events at
// clusterRate events/s), about a minute and a half per delivery mode, for CI's two cores.
// STREAMSCORE_TEST_CLUSTER_SCALE=N runs N rounds on the same stream: N broker kills (the
// leader is looked up again each round, so the victim moves), N instance kills, N scale
// cycles and N times the events. STREAMSCORE_TEST_KAFKA_SH=/path runs another copy of
// scripts/kafka.sh. STREAMSCORE_TEST_CLUSTER_LOGS=/dir keeps the instances' logs there
// (<test>-<instance>.log, with the test's own SIGKILL/SIGTERM/start lines in them);
// otherwise they are printed, tail only, when a test fails.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/topics"
)

const (
	clusterRate       = 100  // input events/s while the faults happen
	clusterMinEvents  = 2000 // per round: input continues at least this long
	clusterPartitions = 6    // of the input and labels topics: two per instance at three
	clusterRF         = 3
	clusterMinISR     = 2
)

// clusterMu runs the cluster tests one at a time: each kills nodes of the same cluster.
var clusterMu sync.Mutex

// TestIntegrationClusterFaults is the cluster fault run with delivery: at-least-once:
// nothing may be missing; duplicates are allowed and counted.
func TestIntegrationClusterFaults(t *testing.T) {
	waitBound(t)
	clusterMu.Lock()
	defer clusterMu.Unlock()
	clusterFaults(t, config.DeliveryAtLeastOnce)
}

// TestIntegrationClusterFaultsExactlyOnce is the same run with delivery: exactly-once: a
// read_committed reader must see exactly one output per input record.
func TestIntegrationClusterFaultsExactlyOnce(t *testing.T) {
	waitBound(t)
	clusterMu.Lock()
	defer clusterMu.Unlock()
	s := clusterFaults(t, config.DeliveryExactlyOnce)
	if s.Duplicates != 0 {
		t.Fatalf("exactly-once on the cluster: %d duplicates seen by a read_committed reader", s.Duplicates)
	}
}

// clusterRun is one scenario in progress.
type clusterRun struct {
	t     *testing.T
	k     *kafkaCluster
	c     *config.Config
	f     *fleet
	adm   *topics.Admin
	rng   *rand.Rand
	start time.Time
}

// note logs what a fault did, with the time since the run began and the wall clock of
// the instances' logs.
func (s *clusterRun) note(format string, args ...any) {
	line := fmt.Sprintf("%6.1fs (ts %.3f) ", time.Since(s.start).Seconds(), float64(time.Now().UnixMilli())/1000) + fmt.Sprintf(format, args...)
	s.t.Log(line)
}

func clusterScale(t *testing.T) int {
	t.Helper()
	v := os.Getenv("STREAMSCORE_TEST_CLUSTER_SCALE")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("STREAMSCORE_TEST_CLUSTER_SCALE=%q: want a whole number of rounds, 1 or more", v)
	}
	return n
}

// clusterJob is the config of a test on the 3-node cluster in the given delivery mode, and
// an admin client: the test's own topics, replicated like the inputs, and the input and
// labels topics created with the given partitions. Its group session (10s) outlasts a
// coordinator's move; a stopped static member's partitions wait this long before they move
// to the others. drain_timeout stays at its default (10s), shorter than a leader's failover
// here (the broker's 6s session, the election, the clients' metadata refresh: 10-12s
// measured): in exactly-once a transaction's wait for its outputs' acks is bounded by the
// transaction timeout instead, or an instance whose outputs wait on a dead leader would
// exit (it did, before pipeline.Config.TransactionTimeout).
func clusterJob(t *testing.T, delivery string, partitions int32) (*kafkaCluster, *config.Config, *topics.Admin) {
	t.Helper()
	k := clusterBrokers(t)
	c := testConfig(t, k.brokers)
	c.Delivery = delivery
	c.Topics.ReplicationFactor = clusterRF // the outputs and the registry, like the inputs
	c.SessionTimeout = 10 * time.Second
	k.ownTopics = []string{c.Topics.Input[0], c.Topics.Labels, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter,
		c.Topics.Backfill, c.Topics.Shadow, c.Topics.Drift, c.Registry.Topic}
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	if err := adm.EnsureTopics(t.Context(), clusterRF,
		topics.TopicSpec{Name: c.Topics.Input[0], Partitions: partitions},
		topics.TopicSpec{Name: c.Topics.Labels, Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	return k, c, adm
}

func clusterFaults(t *testing.T, delivery string) audit.Counts {
	rounds := clusterScale(t)
	k, c, adm := clusterJob(t, delivery, clusterPartitions)
	s := &clusterRun{t: t, k: k, c: c, f: newFleet(t, c), adm: adm, rng: rand.New(rand.NewPCG(16, 3)), start: time.Now()}
	s.awaitInSync() // an earlier test's restarted node may still be catching up

	stop := make(chan struct{})
	input := produceUntil(c, sim.NewStream(61, 0.002), clusterMinEvents*rounds, clusterRate, stop)
	inputDone := false
	t.Cleanup(func() { // a failed test still waits for its producer: no goroutine outlives it
		if !inputDone {
			close(stop)
			<-input
		}
	})
	s.f.start("i1")
	s.progress("i1 alone scores", clusterRate)
	s.checkReplication(c.Topics.Input[0], c.Topics.Predictions, c.Topics.DeadLetter, c.Topics.Alerts)
	var victims []string
	for range rounds {
		s.scaleUp()
		victims = append(victims, strconv.Itoa(int(s.killLeaderNode())))
		s.killInstance("i2")
		s.scaleDown()
	}
	close(stop)
	inputDone = true
	res := result(t, input)
	var in int64
	s.waitFor("reading the input's end offsets", time.Minute, func() bool {
		var ok bool
		in, ok = k.endSum(c.Topics.Input[0])
		return ok
	})
	if in != res.Events {
		t.Fatalf("the test's producer had %d events acknowledged but the input topic holds %d records", res.Events, in)
	}
	awaitScored(t, c, in)
	s.f.stop("i1")
	out := finalOutputs(t, c).Counts()
	missing := in - (out.Predictions + out.DeadLettered)
	report(t, "cluster faults (%s): %d nodes RF %d min.insync %d; %d× [scale 1→3, SIGKILL+restart of broker node (%s), SIGKILL+restart of an instance, scale 3→1]; input events %d, outputs %d (predictions %d, dead letters %d), missing %d, duplicates %d",
		delivery, k.nodes, clusterRF, clusterMinISR, rounds, strings.Join(victims, ","), in, out.Predictions+out.DeadLettered+out.Duplicates, out.Predictions, out.DeadLettered, missing, out.Duplicates)
	if missing != 0 {
		t.Fatalf("%d input records have no output after the cluster faults", missing)
	}
	if n := behind(t, c); n != 0 {
		t.Fatalf("%d records uncommitted after the final graceful stop", n)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after limit or as soon as an
// instance exits by itself; it returns how long it took.
func (s *clusterRun) waitFor(what string, limit time.Duration, cond func() bool) time.Duration {
	s.t.Helper()
	start := time.Now()
	testenv.Eventually(s.t, limit, func() error {
		s.f.check()
		if !cond() {
			return fmt.Errorf("%s: not yet", what)
		}
		return nil
	})
	return time.Since(start)
}

// progress waits until the group has committed n more input records than now: scoring
// goes on (in exactly-once mode, transactions commit).
func (s *clusterRun) progress(what string, n int64) time.Duration {
	s.t.Helper()
	var mark int64
	s.waitFor("reading the committed offsets", time.Minute, func() bool {
		var ok bool
		mark, ok = s.k.committedSum(s.c.Group, s.c.Topics.Input[0])
		return ok
	})
	// Not waitFor: a failure says whether the offsets could not be read (the harness) or
	// did not move (the fleet).
	start := time.Now()
	failed := 0
	testenv.Eventually(s.t, 2*time.Minute, func() error {
		s.f.check()
		now, ok := s.k.committedSum(s.c.Group, s.c.Topics.Input[0])
		switch {
		case !ok:
			failed++
			return fmt.Errorf("%s: the committed offsets could not be read (%d reads failed)", what, failed)
		case now < mark+n:
			return fmt.Errorf("%s: %d records committed since the mark, %d needed (%d reads failed)", what, now-mark, n, failed)
		}
		return nil
	})
	return time.Since(start)
}

// awaitMembers waits until the group is stable with exactly the named instances holding
// partitions, none of them with the member id in replaced (the process it was before a
// restart).
func (s *clusterRun) awaitMembers(names []string, replaced map[string]string) map[string]string {
	s.t.Helper()
	var got map[string]string
	s.waitFor(fmt.Sprintf("the group stable with members %v holding partitions", names), 2*time.Minute, func() bool {
		got = s.k.members(s.c.Group)
		if len(got) != len(names) {
			return false
		}
		for _, n := range names {
			if id, ok := got[n]; !ok || id == replaced[n] {
				return false
			}
		}
		return true
	})
	return got
}

func (s *clusterRun) awaitInSync() time.Duration {
	s.t.Helper()
	start := time.Now()
	testenv.Eventually(s.t, 3*time.Minute, func() error {
		lag, err := s.k.notInSync()
		if err != nil {
			return fmt.Errorf("listing the in-sync replicas: %w", err)
		}
		if len(lag) > 0 {
			return fmt.Errorf("partitions still under-replicated: %v", lag)
		}
		s.f.check()
		return nil
	})
	return time.Since(start)
}

// checkReplication fails unless every partition of the topics has clusterRF replicas
// (the outputs are created by streamscore with topics.replication_factor) and
// min.insync.replicas is clusterMinISR: with one node down, acks=all writes go on.
func (s *clusterRun) checkReplication(names ...string) {
	s.t.Helper()
	md, err := s.k.adm.Metadata(s.t.Context(), names...)
	if err != nil {
		s.t.Fatal(err)
	}
	cfgs, err := s.k.adm.DescribeTopicConfigs(s.t.Context(), names...)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, name := range names {
		td := md.Topics[name]
		if td.Err != nil || len(td.Partitions) == 0 {
			s.t.Fatalf("topic %s: %v", name, td.Err)
		}
		for _, pd := range td.Partitions {
			if len(pd.Replicas) != clusterRF {
				s.t.Fatalf("%s/%d has replicas %v, want %d", name, pd.Partition, pd.Replicas, clusterRF)
			}
		}
		rc, err := cfgs.On(name, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			s.t.Fatalf("describing %s's configs: %v", name, err)
		}
		for _, kv := range rc.Configs {
			if kv.Key == "min.insync.replicas" && (kv.Value == nil || *kv.Value != strconv.Itoa(clusterMinISR)) {
				s.t.Fatalf("%s: min.insync.replicas %v, want %d (the cluster of scripts/kafka.sh sets it)", name, kv.MaybeValue(), clusterMinISR)
			}
		}
	}
}

func (s *clusterRun) scaleUp() {
	s.t.Helper()
	start := time.Now()
	s.f.start("i2")
	s.f.start("i3")
	s.awaitMembers([]string{"i1", "i2", "i3"}, nil)
	s.progress("three instances score", clusterRate)
	s.note("scale 1→3: three members and scoring after %.1fs", time.Since(start).Seconds())
}

func (s *clusterRun) scaleDown() {
	s.t.Helper()
	start := time.Now()
	s.f.stop("i2", "i3")
	s.awaitMembers([]string{"i1"}, nil)
	s.progress("one instance scores alone", clusterRate)
	s.note("scale 3→1: clean exits, one member and scoring after %.1fs", time.Since(start).Seconds())
}

// killLeaderNode SIGKILLs the node leading the most input partitions, waits until their
// leadership has moved and scoring goes on without it, and restarts it; it returns the
// node's id.
func (s *clusterRun) killLeaderNode() int32 {
	s.t.Helper()
	input := s.c.Topics.Input[0]
	var leaders map[int32]int32
	s.waitFor("every input partition has a leader", time.Minute, func() bool {
		var err error
		leaders, err = s.k.leaders(input)
		if err != nil {
			return false
		}
		for _, l := range leaders {
			if l < 0 {
				return false
			}
		}
		return true
	})
	var txnIDs []string
	if s.c.Delivery == config.DeliveryExactlyOnce {
		txnIDs = []string{s.c.Group + "-i1", s.c.Group + "-i2", s.c.Group + "-i3"}
	}
	group, txn := s.k.coordinators(s.c.Group, txnIDs)
	victim, led := pickVictim(leaders, group)
	roles := fmt.Sprintf("leader of %d/%d input partitions", led, len(leaders))
	if victim == group {
		roles += ", group coordinator"
	}
	for id, node := range txn {
		if node == victim {
			roles += ", txn coordinator of " + strings.TrimPrefix(id, s.c.Group+"-")
		}
	}

	start := time.Now()
	s.note("SIGKILL broker node %d (%s)", victim, roles)
	s.k.killNode(victim)
	moved := s.waitFor(fmt.Sprintf("input leadership leaves node %d", victim), 2*time.Minute, func() bool {
		now, err := s.k.leaders(input)
		if err != nil {
			return false
		}
		for _, l := range now {
			if l < 0 || l == victim {
				return false
			}
		}
		return true
	})
	s.progress(fmt.Sprintf("scoring goes on with node %d down", victim), clusterRate)
	resumed := time.Since(start)
	s.k.startNode(victim)
	down := time.Since(start)
	synced := s.awaitInSync()
	s.note("broker node %d: input leaders moved in %.1fs, %d records committed by %.1fs, restarted after %.1fs down, every partition in sync %.1fs later",
		victim, moved.Seconds(), clusterRate, resumed.Seconds(), down.Seconds(), synced.Seconds())
	return victim
}

// pickVictim is the node leading the most partitions; of equals the group coordinator,
// then the lowest id.
func pickVictim(leaders map[int32]int32, coordinator int32) (victim int32, led int) {
	count := map[int32]int{}
	for _, l := range leaders {
		count[l]++
	}
	rank := func(id int32) int32 {
		if id == coordinator {
			return -1
		}
		return id
	}
	victim = -1
	for id, n := range count {
		if n > led || n == led && rank(id) < rank(victim) {
			victim, led = id, n
		}
	}
	return victim, led
}

// killInstance SIGKILLs the named instance while the fleet writes outputs, at a random
// moment, and starts it again; it waits until scoring goes on.
func (s *clusterRun) killInstance(name string) {
	s.t.Helper()
	all := []string{"i1", "i2", "i3"}
	old := s.awaitMembers(all, nil)
	var before int64
	s.waitFor("reading the outputs' end offsets", time.Minute, func() bool {
		var ok bool
		before, ok = s.k.endSum(s.c.Topics.Predictions)
		return ok
	})
	s.waitFor("outputs being written", 2*time.Minute, func() bool {
		now, ok := s.k.endSum(s.c.Topics.Predictions)
		return ok && now > before
	})
	time.Sleep(time.Duration(100+s.rng.IntN(500)) * time.Millisecond) // a random moment to kill at
	start := time.Now()
	s.note("SIGKILL instance %s while outputs are written", name)
	s.f.kill(name)
	s.f.start(name)
	s.awaitMembers(all, map[string]string{name: old[name]}) // the new process has joined
	s.progress(fmt.Sprintf("scoring goes on after %s's restart", name), clusterRate)
	s.note("instance %s restarted: the new process a member and %d records committed %.1fs after the kill",
		name, clusterRate, time.Since(start).Seconds())
}
