//go:build integration

package drivers

import (
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/config"
)

// TestIntegrationStartWithABrokerDown (issue 23): an instance that starts while a broker
// is down (killed just before, so that the metadata still names it as the leader of
// partitions of the labels and input topics for a failover's length) waits the failover
// out in its start-up steps instead of exiting on "connection refused", and scores every
// event. Skipped unless STREAMSCORE_TEST_CLUSTER_BROKERS is set (see cluster_test.go).
func TestIntegrationStartWithABrokerDown(t *testing.T) {
	for _, delivery := range []string{config.DeliveryAtLeastOnce, config.DeliveryExactlyOnce} {
		t.Run(delivery, func(t *testing.T) { startWithABrokerDown(t, delivery) })
	}
}

func startWithABrokerDown(t *testing.T, delivery string) {
	k, c, _ := clusterJob(t, delivery, clusterPartitions)
	pollUntil(t, "every partition in sync (an earlier test's restarted node may be catching up)", 5*time.Minute, func() bool {
		lagging, err := k.notInSync()
		return err == nil && len(lagging) == 0
	})
	// a first instance creates the output and registry topics and scores a first part:
	// the instance started below is a restart, as in the report of issue 23
	const events = 2000
	first := produceT(t, c, events, 0.01, 23)
	job := startLive(t, c, nil)
	awaitScored(t, c, first.Events)
	if err := job.stop(); err != nil {
		t.Fatalf("stopping the first instance: %v", err)
	}

	// the leader of the labels topic's first partition: NewFeedback lists its offsets first
	var victim int32 = -1
	pollUntil(t, "the labels topic's leaders", time.Minute, func() bool {
		leaders, err := k.leaders(c.Topics.Labels)
		if err == nil && leaders[0] >= 0 {
			victim = leaders[0]
		}
		return victim >= 0
	})
	k.killNode(victim)
	t.Logf("killed node %d, the leader of %s/0; starting a live instance now", victim, c.Topics.Labels)

	job = startLive(t, c, nil)                 // at once, while the metadata still names the dead leader; fails the test if start-up gives up
	second := produceT(t, c, events, 0.01, 24) // acks=all: two of three replicas are in sync
	res := first.Events + second.Events
	awaitScored(t, c, res)
	if err := job.stop(); err != nil {
		t.Fatalf("stopping the live instance: %v", err)
	}
	out := finalOutputs(t, c).Counts()
	if missing := res - (out.Predictions + out.DeadLettered); missing != 0 {
		t.Fatalf("%d of %d events have no output", missing, res)
	}
	if delivery == config.DeliveryExactlyOnce && out.Duplicates != 0 {
		t.Fatalf("exactly-once: %d duplicate outputs", out.Duplicates)
	}
	report(t, "start-up with broker node %d down (%s): %d events, %d predictions, %d dead letters, %d duplicates",
		victim, delivery, res, out.Predictions, out.DeadLettered, out.Duplicates)
}

// pollUntil polls cond every 200ms until it holds, failing the test after limit.
func pollUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond) // polling interval, not a barrier
	}
}
