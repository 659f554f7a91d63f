package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
)

// ackSlowSink is slowSink with ProduceAck: it counts the outputs handed to it each way.
type ackSlowSink struct {
	*slowSink
	viaAcker, viaFunc atomic.Int64
}

func (k *ackSlowSink) Produce(out *Output, ack func(error)) {
	k.viaFunc.Add(1)
	k.slowSink.Produce(out, ack)
}

func (k *ackSlowSink) ProduceAck(out *Output, a Acker) {
	k.viaAcker.Add(1)
	k.slowSink.Produce(out, a.Ack)
}

// TestOperatorAckProducerCommitsOnlyAcknowledged: with a sink that has ProduceAck, every
// output of a scored row (prediction, alert, shadow prediction, switch marker) goes
// through it, acknowledged out of order from other goroutines, and the commit rule holds:
// no commit covers a record with an output in flight, and the last covers everything.
// Each row's outputs come from its batch's slab (route): the acks' counts must match the
// sink's, output by output.
func TestOperatorAckProducerCommitsOnlyAcknowledged(t *testing.T) {
	s, fs := handbookSpec(t)
	live, shadow := openTestModel(t), openLogistic(t, 2)
	rng := rand.New(rand.NewPCG(27, 27))
	recs, bad, labels := testRecordsWithLabels(6000, rng)
	sink := &ackSlowSink{slowSink: &slowSink{pending: map[srcID]int{}, acked: map[srcID][]string{}, seed: 27}}
	src := &memSource{recs: recs, rng: rng, holdAt: []int{len(recs) / 2}, commitCh: make(chan struct{}, 1)}
	var violations []string
	final := map[TopicPartition]int64{}
	src.onCommit = func(offs []Offset) {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, o := range offs {
			final[o.TopicPartition] = o.Offset
			for _, r := range recs {
				id := srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}
				if r.Partition == o.Partition && r.Offset < o.Offset && (sink.pending[id] != 0 || len(sink.acked[id]) == 0) {
					violations = append(violations, fmt.Sprintf("commit %d on %v covers offset %d with %d outputs in flight", o.Offset, o.TopicPartition, r.Offset, sink.pending[id]))
				}
			}
		}
	}
	st := &Stats{}
	op, err := New(Config{
		Schema: s, Features: fs, Models: &swapModels{cur: live, shadow: shadow}, Threshold: 0.05, Stats: st,
		Topics:         Topics{Predictions: "preds", Alerts: "alerts", DeadLetter: "dlq", Shadow: "shadow"},
		Marks:          &Marks{Topic: "marks", Encode: encodeMark},
		Batch:          scorer.BatcherConfig{MaxSize: 64, QueueSize: 256},
		CommitInterval: time.Millisecond,
		Feedback:       &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(28, 28))},
	}, src, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Fatalf("%d commits ahead of acknowledgements, first: %s", len(violations), violations[0])
	}
	byTopic := map[string]int64{}
	last := map[TopicPartition]int64{}
	for _, r := range recs {
		id := srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}
		last[id.tp] = r.Offset
		kinds := map[string]int{}
		for _, topic := range sink.acked[id] {
			kinds[topic]++
			byTopic[topic]++
		}
		if bad[id] && (kinds["dlq"] != 1 || len(kinds) != 1) || !bad[id] && (kinds["preds"] != 1 || kinds["shadow"] != 1 || kinds["dlq"] != 0) {
			t.Fatalf("record %v (bad=%v): outputs %v", id, bad[id], sink.acked[id])
		}
	}
	for tp, off := range last {
		if final[tp] != off+1 {
			t.Fatalf("final commit of %v is %d, want %d", tp, final[tp], off+1)
		}
	}
	if byTopic["alerts"] == 0 || byTopic["alerts"] == byTopic["preds"] {
		t.Fatalf("%d alerts for %d predictions: the test wants some rows alerting and some not", byTopic["alerts"], byTopic["preds"])
	}
	for topic, n := range map[string]int64{"preds": st.Predictions.Load(), "alerts": st.Alerts.Load(), "shadow": st.Shadow.Load(), "marks": st.Marks.Load(), "dlq": st.DeadLettered.Load()} {
		if n != byTopic[topic] {
			t.Fatalf("%s: the operator counted %d acknowledged, the sink acknowledged %d", topic, n, byTopic[topic])
		}
	}
	if got, want := sink.viaAcker.Load()+sink.viaFunc.Load(), byTopic["preds"]+byTopic["alerts"]+byTopic["shadow"]+byTopic["marks"]+byTopic["dlq"]; got != want {
		t.Fatalf("%d outputs produced, %d acknowledged", got, want)
	}
	if sink.viaFunc.Load() != byTopic["dlq"] {
		t.Fatalf("%d outputs through Produce, want only the %d dead letters: the others have ProduceAck", sink.viaFunc.Load(), byTopic["dlq"])
	}
}

// ackFailSink fails, through its Acker, the first prediction of input partition part at
// or after offset from; it acknowledges everything else at once.
type ackFailSink struct {
	DiscardSink
	part   int32
	from   int64
	mu     sync.Mutex
	failed *Record
}

func (k *ackFailSink) ProduceAck(out *Output, a Acker) {
	k.mu.Lock()
	fail := k.failed == nil && out.Topic == "preds" && out.Source.Partition == k.part && out.Source.Offset >= k.from
	if fail {
		k.failed = out.Source
	}
	k.mu.Unlock()
	if fail {
		a.Ack(&record.WriteError{Topic: out.Topic, Transient: true, Err: errors.New("NOT_LEADER_OR_FOLLOWER")})
		return
	}
	a.Ack(nil)
}

// TestOperatorAckProducerFailedWrite: a prediction that fails through its Acker stops the
// operator with the sink's error naming the input record, and no commit passes that record.
func TestOperatorAckProducerFailedWrite(t *testing.T) {
	s, fs := handbookSpec(t)
	recs, _, labels := testRecordsWithLabels(3000, rand.New(rand.NewPCG(29, 29)))
	sink := &ackFailSink{part: 1, from: 1000}
	var mu sync.Mutex
	committed := map[TopicPartition]int64{}
	src := &memSource{recs: recs, rng: rand.New(rand.NewPCG(30, 30)), onCommit: func(offs []Offset) {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range offs {
			committed[o.TopicPartition] = max(committed[o.TopicPartition], o.Offset)
		}
	}}
	op, err := New(Config{
		Schema: s, Features: fs, Model: openTestModel(t),
		Topics:         Topics{Predictions: "preds", DeadLetter: "dlq"},
		Batch:          scorer.BatcherConfig{MaxSize: 64},
		CommitInterval: time.Millisecond,
		Feedback:       &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(31, 31))},
	}, src, sink)
	if err != nil {
		t.Fatal(err)
	}
	runErr := op.Run(context.Background())
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.failed == nil {
		t.Fatal("no prediction of partition 1 past offset 1000: the test failed none")
	}
	at := fmt.Sprintf("writing to preds for in/1@%d:", sink.failed.Offset)
	if runErr == nil || !record.IsTransient(runErr) || !strings.Contains(runErr.Error(), at) {
		t.Fatalf("Run = %v, want the transient WriteError %q", runErr, at)
	}
	mu.Lock()
	defer mu.Unlock()
	if c := committed[TopicPartition{Topic: "in", Partition: 1}]; c > sink.failed.Offset {
		t.Fatalf("committed in/1 up to %d, past %d, whose prediction was never written", c, sink.failed.Offset)
	}
}
