//go:build integration

package drivers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// TestIntegrationLiveScoring: live scoring end to end on Apache Kafka, bad input included.
func TestIntegrationLiveScoring(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 3)
	job := startLive(t, c, nil)
	res := produceT(t, c, 10000, 0.01, 11)
	awaitScored(t, c, res.Events)
	if err := job.stop(); err != nil {
		t.Fatal(err)
	}
	s := finalOutputs(t, c).Counts()
	report(t, "events %d: predictions %d, alerts %d, dead letters %d (injected %d), duplicates %d",
		res.Events, s.Predictions, s.Alerts, s.DeadLettered, res.Bad, s.Duplicates)
	if s.Predictions+s.DeadLettered != res.Events || s.DeadLettered != res.Bad || res.Bad == 0 || s.Duplicates != 0 {
		t.Fatalf("outputs do not match the input: %+v, bad injected %d", s, res.Bad)
	}
	if n := behind(t, c); n != 0 {
		t.Fatalf("%d input records not committed after a graceful stop", n)
	}
}

// TestIntegrationTwoInstancesShareTheGroup: two pipelines in one consumer group split the
// partitions; in steady state no event is lost or scored twice.
func TestIntegrationTwoInstancesShareTheGroup(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 6)
	a := startLive(t, c, nil)
	b := startLive(t, c, nil)
	waitMembers(t, c, 2)
	res := produceT(t, c, 20000, 0.005, 12)
	awaitScored(t, c, res.Events)
	for _, j := range []*liveJob{a, b} {
		if err := j.stop(); err != nil {
			t.Fatal(err)
		}
	}
	s := finalOutputs(t, c).Counts()
	t.Logf("instance A fetched %d, B fetched %d; predictions %d, dead letters %d, duplicates %d",
		a.stats.In.Load(), b.stats.In.Load(), s.Predictions, s.DeadLettered, s.Duplicates)
	if a.stats.In.Load() == 0 || b.stats.In.Load() == 0 {
		t.Fatalf("one instance did no work: A %d, B %d", a.stats.In.Load(), b.stats.In.Load())
	}
	if a.stats.In.Load()+b.stats.In.Load() != res.Events {
		t.Fatalf("instances fetched %d + %d records, %d were produced", a.stats.In.Load(), b.stats.In.Load(), res.Events)
	}
	if s.Predictions+s.DeadLettered != res.Events || s.Duplicates != 0 {
		t.Fatalf("outputs %+v for %d events", s, res.Events)
	}
}

func waitMembers(t *testing.T, c *config.Config, n int) {
	t.Helper()
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	testenv.Eventually(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := adm.AssignedMembers(ctx, c.Group)
		cancel()
		if err != nil {
			return fmt.Errorf("group %s: %w", c.Group, err)
		}
		if got != n {
			return fmt.Errorf("group %s: %d members with partitions, want %d", c.Group, got, n)
		}
		return nil
	})
}

// TestIntegrationRestartResumesFromCommittedOffsets: a pipeline stopped and replaced by a
// new one resumes at the committed offsets: nothing lost, nothing scored twice.
func TestIntegrationRestartResumesFromCommittedOffsets(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 3)
	first := startLive(t, c, nil)
	r1 := produceT(t, c, 5000, 0.01, 21)
	awaitScored(t, c, r1.Events)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	r2 := produceT(t, c, 5000, 0.01, 22) // written while no pipeline runs
	second := startLive(t, c, nil)
	awaitScored(t, c, r1.Events+r2.Events)
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	s := finalOutputs(t, c).Counts()
	t.Logf("first run fetched %d, second %d; outputs %+v", first.stats.In.Load(), second.stats.In.Load(), s)
	if second.stats.In.Load() != r2.Events {
		t.Fatalf("restarted pipeline fetched %d records, want exactly the %d written after the stop", second.stats.In.Load(), r2.Events)
	}
	if s.Predictions+s.DeadLettered != r1.Events+r2.Events || s.Duplicates != 0 {
		t.Fatalf("outputs %+v for %d events", s, r1.Events+r2.Events)
	}
}

// TestIntegrationForeignClients: Apache Kafka's own console producer writes events that
// streamscore scores, and its console consumer reads the predictions back; each score must
// equal the model's score of that event computed directly.
func TestIntegrationForeignClients(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 3)
	startLive(t, c, nil)

	const n = 300
	gen := sim.New(sim.Config{Seed: 5})
	var in bytes.Buffer
	events := map[int64][]byte{}
	var txs []sim.Tx
	for i := 0; i < n; i++ {
		tx := gen.Next()
		ev := tx.AppendEvent(nil)
		events[tx.ID] = ev
		txs = append(txs, tx)
		fmt.Fprintf(&in, "%d|%s\n", tx.CustomerID, ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prod := kafkaTool(ctx, "kafka-console-producer", "--bootstrap-server", c.Kafka.Brokers[0], "--topic", c.Topics.Input[0],
		"--property", "parse.key=true", "--property", "key.separator=|")
	prod.Stdin = &in
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("console producer: %v\n%s", err, out)
	}
	cons := kafkaTool(ctx, "kafka-console-consumer", "--bootstrap-server", c.Kafka.Brokers[0], "--topic", c.Topics.Predictions,
		"--from-beginning", "--max-messages", fmt.Sprint(n), "--timeout-ms", "120000", "--property", "print.key=true", "--property", "key.separator=|")
	var stderr bytes.Buffer
	cons.Stderr = &stderr
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("console consumer: %v\n%s", err, stderr.String())
	}

	// Score the same events directly: the handbook features by brute force (no labels were
	// written, so the terminal windows are empty), then the model.
	want := handbookFeatures(txs)
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	model, err := scorer.Open(cc.ModelOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	score := make([]float32, 1)

	inputs := readInputs(t, c)
	seen := map[int64]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "|")
		if !ok {
			t.Fatalf("console consumer line %q", sc.Text())
		}
		var p pipeline.Prediction
		if err := json.Unmarshal([]byte(val), &p); err != nil {
			t.Fatalf("prediction %q: %v", val, err)
		}
		if p.Key == nil || *p.Key != key {
			t.Fatalf("prediction keyed %q carries key %v", key, p.Key)
		}
		var txid struct {
			ID int64 `json:"transaction_id"`
		}
		rec, ok := inputs[[2]int64{int64(p.Source.Partition), p.Source.Offset}]
		if !ok {
			t.Fatalf("prediction for %s/%d@%d, which is not an input record", p.Source.Topic, p.Source.Partition, p.Source.Offset)
		}
		if err := json.Unmarshal(rec, &txid); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec, events[txid.ID]) {
			t.Fatalf("input %s/%d@%d is %s, not an event the console producer wrote", p.Source.Topic, p.Source.Partition, p.Source.Offset, rec)
		}
		seen[txid.ID] = true
		if _, err := model.Score(want[txid.ID], 1, score, nil); err != nil {
			t.Fatal(err)
		}
		if p.Score != score[0] {
			t.Fatalf("transaction %d: streamscore scored %v, the model directly %v", txid.ID, p.Score, score[0])
		}
	}
	if len(seen) != n {
		t.Fatalf("console consumer read predictions for %d distinct events, want %d", len(seen), n)
	}
}

// kafkaTool runs one of Apache Kafka's own CLI tools from the jars scripts/kafka.sh installed.
func kafkaTool(ctx context.Context, tool string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "../../scripts/kafka.sh", append([]string{"run-tool", tool}, args...)...)
	cmd.Env = os.Environ()
	return cmd
}

// readInputs returns every input record's value by partition and offset, read with our
// own client to the topic's end.
func readInputs(t *testing.T, c *config.Config) map[[2]int64][]byte {
	t.Helper()
	out := map[[2]int64][]byte{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := topics.ReadToEnd(ctx, c.Kafka, c.Topics.Input[:1], func(recs []record.Record) error {
		for _, rec := range recs {
			out[[2]int64{int64(rec.Partition), rec.Offset}] = rec.Value
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
