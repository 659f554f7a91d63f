package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
)

// inputNamed finds the input record in a failed write's error.
var inputNamed = regexp.MustCompile(` for in/(\d+)@(\d+)`)

// failOneSink acknowledges every output at once, except output number skip+1 sent to
// topic, which it fails with err. It notes which input record that output held back: its Source,
// or for an output without one (a drift record) the partition named in its key.
type failOneSink struct {
	topic string
	skip  int // outputs to topic acknowledged before the one that fails
	err   error

	mu         sync.Mutex
	failed     bool
	failedSrc  *Record // nil for an output without a Source
	failedPart int32   // the failed output's input partition
	seen       map[string]int
}

func (k *failOneSink) Produce(out *Output, ack func(error)) {
	k.mu.Lock()
	k.seen[out.Topic]++
	fail := out.Topic == k.topic && !k.failed && k.seen[out.Topic] > k.skip
	if fail {
		k.failed = true
		k.failedSrc = out.Source
		k.failedPart = -1
		if out.Source != nil {
			k.failedPart = out.Source.Partition
		} else if i := strings.LastIndexByte(string(out.Key), '/'); i >= 0 {
			// a drift record's key: model/topic/partition
			_, _ = fmt.Sscan(string(out.Key[i+1:]), &k.failedPart)
		}
	}
	k.mu.Unlock()
	if fail {
		ack(k.err)
		return
	}
	ack(nil)
}

func (k *failOneSink) Flush(context.Context) error { return nil }

// TestOperatorFailedWriteOfEachOutputKind fails the write of one output of each kind in
// turn (prediction, alert, dead letter, shadow, switch marker, drift record) and checks
// that the operator does not panic, that Run returns the sink's error wrapped (errors.As
// and record.IsTransient see it) naming the topic and the input record, that the failure
// is counted by class, and that no commit covers the input record whose output failed.
func TestOperatorFailedWriteOfEachOutputKind(t *testing.T) {
	s, fs := handbookSpec(t)
	live, shadow := openTestModel(t), openLogistic(t, 2)
	ref := shippedReference(t)
	recs, _, labels := testRecordsWithLabels(3000, rand.New(rand.NewPCG(12, 12)))
	for _, tc := range []struct {
		kind, topic string
		transient   bool
	}{
		{"prediction", "preds", true},
		{"alert", "alerts", true},
		{"dead letter", "dlq", false},
		{"shadow", "shadow", true},
		{"switch marker", "marks", false},
		{"drift record", "drift", true},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			cause := &record.WriteError{Topic: tc.topic, Transient: tc.transient, Err: errors.New("NOT_LEADER_OR_FOLLOWER")}
			if !tc.transient {
				cause = &record.WriteError{Topic: tc.topic, Fix: "grant the producer WRITE on topic " + tc.topic,
					Err: errors.New("TOPIC_AUTHORIZATION_FAILED")}
			}
			sink := &failOneSink{topic: tc.topic, err: cause, seen: map[string]int{}}
			var mu sync.Mutex
			committed := map[TopicPartition]int64{} // highest committed offset per partition
			src := &memSource{recs: recs, rng: rand.New(rand.NewPCG(13, 13)), onCommit: func(offs []Offset) {
				mu.Lock()
				defer mu.Unlock()
				for _, o := range offs {
					committed[o.TopicPartition] = max(committed[o.TopicPartition], o.Offset)
				}
			}}
			m := NewMetrics(nil)
			op, err := New(Config{
				Schema: s, Features: fs, Models: &swapModels{cur: live, shadow: shadow}, Threshold: 0.05, Metrics: m,
				Topics:         Topics{Predictions: "preds", Alerts: "alerts", DeadLetter: "dlq", Shadow: "shadow"},
				Marks:          &Marks{Topic: "marks", Encode: encodeMark},
				Drift:          &DriftConfig{Topic: "drift", Window: time.Hour, MinCount: 10, Reference: func(Scorer) *drift.Reference { return ref }},
				Batch:          scorer.BatcherConfig{MaxSize: 64},
				CommitInterval: time.Millisecond,
				Feedback:       &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(14, 14))},
			}, src, sink)
			if err != nil {
				t.Fatal(err)
			}
			runErr := op.Run(context.Background())

			sink.mu.Lock()
			defer sink.mu.Unlock()
			if !sink.failed {
				t.Fatalf("no %s was written (outputs by topic: %v): the test did not fail one", tc.kind, sink.seen)
			}
			if runErr == nil {
				t.Fatalf("Run returned nil after a %s failed to write", tc.kind)
			}
			var we *record.WriteError
			if !errors.As(runErr, &we) || we != cause {
				t.Fatalf("Run's error %q does not wrap the sink's WriteError", runErr)
			}
			if record.IsTransient(runErr) != tc.transient {
				t.Fatalf("IsTransient(%q) = %v, want %v", runErr, !tc.transient, tc.transient)
			}
			if !strings.Contains(runErr.Error(), "writing to "+tc.topic+" ") {
				t.Fatalf("Run's error %q does not name the topic %s", runErr, tc.topic)
			}
			// the input record named: the output's Source, or for a drift record one of
			// the partition its key names (the record that closed the window)
			match := inputNamed.FindStringSubmatch(runErr.Error())
			if match == nil {
				t.Fatalf("Run's error %q names no input record (in/partition@offset)", runErr)
			}
			part, perr := strconv.ParseInt(match[1], 10, 32)
			off, oerr := strconv.ParseInt(match[2], 10, 64)
			if perr != nil || oerr != nil {
				t.Fatalf("input record in %q: %v", runErr, errors.Join(perr, oerr))
			}
			if int32(part) != sink.failedPart || sink.failedSrc != nil && off != sink.failedSrc.Offset {
				t.Fatalf("Run's error %q names in/%d@%d; the failed %s was for partition %d (source %v)",
					runErr, part, off, tc.kind, sink.failedPart, sink.failedSrc)
			}
			class := "permanent"
			if tc.transient {
				class = "transient"
			}
			if got := testCounterValue(t, m.writeErrors.WithLabelValues(tc.topic, class)); got != 1 {
				t.Fatalf("streamscore_output_write_errors_total{topic=%q,class=%q} = %v, want 1", tc.topic, class, got)
			}
			mu.Lock()
			defer mu.Unlock()
			tp := TopicPartition{Topic: "in", Partition: sink.failedPart}
			if c, ok := committed[tp]; ok && c > off {
				t.Fatalf("committed %v up to %d, past %d, whose %s was never written: it would be lost", tp, c, off, tc.kind)
			}
		})
	}
}

// txSource is an exactly-once source and sink: each Fetch opens a transaction over its
// records, EndBatch commits their offsets, AbortBatch drops them. Its outputs go to
// failOneSink.
type txSource struct {
	*failOneSink
	recs []Record

	txMu      sync.Mutex
	open      []Record
	committed map[TopicPartition]int64 // next offset to consume, per partition
	aborts    int
}

func (s *txSource) Fetch(context.Context) ([]Record, error) {
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	n := min(50, len(s.recs))
	out := s.recs[:n]
	s.recs = s.recs[n:]
	s.txMu.Lock()
	s.open = out
	s.txMu.Unlock()
	return out, nil
}

func (s *txSource) EndBatch(context.Context) (bool, error) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	for _, r := range s.open {
		tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
		s.committed[tp] = max(s.committed[tp], r.Offset+1)
	}
	s.open = nil
	return true, nil
}

func (s *txSource) AbortBatch(context.Context) error {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	s.aborts++
	s.open = nil
	return nil
}

// TestOperatorFailedWriteExactlyOnce: in exactly-once, a failed write aborts the open
// transaction: it never commits the offset of the record whose output failed, and Run
// returns the classified error.
func TestOperatorFailedWriteExactlyOnce(t *testing.T) {
	s := referenceSchema(t)
	fs := referenceFeatures(t, s)
	var recs []Record
	for i := range 600 {
		recs = append(recs, Record{Topic: "in", Partition: int32(i % 2), Offset: int64(i / 2), Key: []byte("596"), Value: []byte(goodEvent)})
	}
	cause := &record.WriteError{Topic: "preds", Transient: true, Err: errors.New("INVALID_PRODUCER_EPOCH")}
	src := &txSource{failOneSink: &failOneSink{topic: "preds", skip: 222, err: cause, seen: map[string]int{}},
		recs: recs, committed: map[TopicPartition]int64{}}
	op, err := New(Config{
		Schema: s, Features: fs, Model: FeaturesOnly{N: fs.Len()},
		Topics: Topics{Predictions: "preds", DeadLetter: "dlq"}, Batch: scorer.BatcherConfig{MaxSize: 16},
	}, src, src)
	if err != nil {
		t.Fatal(err)
	}
	runErr := op.Run(context.Background())
	if !record.IsTransient(runErr) || !errors.Is(runErr, cause) {
		t.Fatalf("Run = %v, want the sink's transient WriteError", runErr)
	}
	src.mu.Lock()
	failed := *src.failedSrc
	src.mu.Unlock()
	src.txMu.Lock()
	defer src.txMu.Unlock()
	if src.aborts == 0 {
		t.Fatal("the transaction open when the write failed was never aborted")
	}
	tp := TopicPartition{Topic: failed.Topic, Partition: failed.Partition}
	if src.committed[tp] > failed.Offset {
		t.Fatalf("a transaction committed %v up to %d, past %d, whose prediction failed", tp, src.committed[tp], failed.Offset)
	}
	if len(src.committed) == 0 {
		t.Fatal("no transaction committed before the failure: the test did not exercise commits")
	}
}
