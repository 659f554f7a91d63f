package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/streamscore/streamscore/scorer"
)

// memSource replays prepared records in chunks of random size and records commits. It is
// not Kafka: it exists to drive the operator's commit tracking deterministically. The
// Kafka behaviour is tested end to end on the embedded and the real broker.
type memSource struct {
	recs     []Record
	pos      int
	rng      *rand.Rand
	mu       sync.Mutex
	onCommit func([]Offset)
	commits  int
	// holdAt lists fetch positions, ascending: on reaching the i-th, Fetch waits until the
	// operator has committed i+1 times, so that commits during the run are certain,
	// however fast or slow the machine. The records fetched before a hold are
	// uncommitted when it begins, so the commit loop has something to commit.
	holdAt   []int
	held     int
	commitCh chan struct{}
}

// holdLimit bounds a hold: an operator that never commits while fetching is stuck, and
// the test says so instead of hanging.
const holdLimit = time.Minute

func (s *memSource) Fetch(ctx context.Context) ([]Record, error) {
	if s.pos >= len(s.recs) {
		return nil, io.EOF
	}
	if s.held < len(s.holdAt) && s.pos >= s.holdAt[s.held] {
		s.held++
		if err := s.awaitCommits(ctx, s.held); err != nil {
			return nil, err
		}
	}
	n := 1 + s.rng.IntN(300)
	end := min(s.pos+n, len(s.recs))
	out := s.recs[s.pos:end]
	s.pos = end
	return out, nil
}

func (s *memSource) Commit(_ context.Context, offs []Offset) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits++
	s.onCommit(offs)
	if s.commitCh != nil {
		select {
		case s.commitCh <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	return nil
}

// awaitCommits waits until the operator has committed n times.
func (s *memSource) awaitCommits(ctx context.Context, n int) error {
	limit := time.NewTimer(holdLimit)
	defer limit.Stop()
	for {
		s.mu.Lock()
		got := s.commits
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-s.commitCh:
		case <-ctx.Done():
			return ctx.Err()
		case <-limit.C:
			return fmt.Errorf("memSource: %d commits after fetching %d records and waiting %v, want %d: the operator does not commit while it runs", got, s.pos, holdLimit, n)
		}
	}
}

type srcID struct {
	tp  TopicPartition
	off int64
}

// slowSink acknowledges outputs after random delays, out of order, from other goroutines.
type slowSink struct {
	mu      sync.Mutex
	pending map[srcID]int
	acked   map[srcID][]string // topics of acknowledged outputs
	wg      sync.WaitGroup
	seed    uint64
	n       uint64
}

func (k *slowSink) Produce(out *Output, ack func(error)) {
	id := srcID{TopicPartition{Topic: out.Source.Topic, Partition: out.Source.Partition}, out.Source.Offset}
	k.mu.Lock()
	k.pending[id]++
	k.n++
	delay := time.Duration(rand.New(rand.NewPCG(k.seed, k.n)).IntN(2000)) * time.Microsecond
	k.mu.Unlock()
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		time.Sleep(delay) // simulated broker latency, not a test barrier
		k.mu.Lock()
		k.pending[id]--
		k.acked[id] = append(k.acked[id], out.Topic)
		k.mu.Unlock()
		ack(nil)
	}()
}

func (k *slowSink) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() { k.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func openTestModel(t testing.TB) *scorer.Model {
	t.Helper()
	m, err := scorer.Open(scorer.Options{Path: "../testdata/model/fraud.onnx", Name: "fraud"})
	if err != nil {
		t.Fatalf("opening the reference model on ONNX Runtime: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// testRecordsWithLabels makes n events keyed (and partitioned) by customer, 17s apart,
// with about one in twenty truncated, and the labels of the good ones in time order.
func testRecordsWithLabels(n int, rng *rand.Rand) (recs []Record, bad map[srcID]bool, labels []Record) {
	return genRecords(n, 300, 50, 17*time.Second, 20, rng)
}

// genRecords makes n events, spacing apart, of customers and terminals drawn uniformly,
// one in badEvery truncated (0: none), and the labels of the good ones in time order.
func genRecords(n, customers, terminals int, spacing time.Duration, badEvery int, rng *rand.Rand) (recs []Record, bad map[srcID]bool, labels []Record) {
	bad = map[srcID]bool{}
	next := map[int32]int64{}
	lnext := map[int32]int64{}
	base := time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		cust := rng.IntN(customers)
		term := rng.IntN(terminals)
		p := int32(cust % 3)
		off := next[p]
		next[p] += 1 + int64(rng.IntN(2))
		ts := base.Add(time.Duration(i) * spacing)
		amount := 5 + rng.Float64()*400
		v := fmt.Sprintf(`{"transaction_id":%d,"tx_datetime":"%s","customer_id":%d,"terminal_id":%d,"tx_amount":%.2f}`,
			i, ts.Format(time.RFC3339), cust, term, amount)
		if badEvery > 0 && rng.IntN(badEvery) == 0 {
			v = v[:len(v)-3] // truncated: dead-lettered
			bad[srcID{TopicPartition{Topic: "in", Partition: p}, off}] = true
		} else {
			lp := int32(term % 2)
			labels = append(labels, Record{Topic: "labels", Partition: lp, Offset: lnext[lp], Timestamp: ts,
				Value: []byte(fmt.Sprintf(`{"transaction_id":%d,"tx_datetime":"%s","terminal_id":%d,"tx_fraud":%d}`,
					i, ts.Format(time.RFC3339), term, rng.IntN(2)))})
			lnext[lp]++
		}
		recs = append(recs, Record{Topic: "in", Partition: p, Offset: off, Key: []byte(fmt.Sprint(cust)), Value: []byte(v), Timestamp: ts})
	}
	return recs, bad, labels
}

// TestOperatorCommitsOnlyAcknowledgedOutputs runs the operator with a sink that acks out of
// order and checks, at every commit, that every record below the committed offset has all
// its outputs acknowledged; at the end every record has exactly one prediction or dead
// letter, and the final commit covers everything.
func TestOperatorCommitsOnlyAcknowledgedOutputs(t *testing.T) {
	s, fs := handbookSpec(t)
	model := openTestModel(t)
	rng := rand.New(rand.NewPCG(42, 42))
	recs, bad, labels := testRecordsWithLabels(20000, rng)
	sink := &slowSink{pending: map[srcID]int{}, acked: map[srcID][]string{}, seed: 7}
	// Two holds mid-run and the final commit: at least 3 commits on any machine.
	src := &memSource{recs: recs, rng: rng, holdAt: []int{len(recs) / 3, 2 * len(recs) / 3}, commitCh: make(chan struct{}, 1)}
	var violations []string
	final := map[TopicPartition]int64{}
	src.onCommit = func(offs []Offset) {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, o := range offs {
			final[o.TopicPartition] = o.Offset
			for _, r := range recs {
				if r.Partition != o.Partition || r.Offset >= o.Offset {
					continue
				}
				id := srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}
				if sink.pending[id] != 0 || len(sink.acked[id]) == 0 {
					violations = append(violations, fmt.Sprintf("commit %d on %v covers offset %d with %d outputs in flight, %d acked",
						o.Offset, o.TopicPartition, r.Offset, sink.pending[id], len(sink.acked[id])))
				}
			}
		}
	}
	op, err := New(Config{
		Schema: s, Features: fs, Model: model, Threshold: 0.5,
		Topics:         Topics{Predictions: "preds", Alerts: "alerts", DeadLetter: "dlq"},
		Batch:          scorer.BatcherConfig{MaxSize: 64, QueueSize: 256},
		CommitInterval: time.Millisecond,
		Feedback:       &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(5, 5))},
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
	if src.commits < 3 { // cannot pass without the holds' commits: a check on the test itself
		t.Fatalf("only %d commits: the test did not exercise commits during the run", src.commits)
	}
	last := map[TopicPartition]int64{}
	for _, r := range recs {
		id := srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}
		last[id.tp] = r.Offset
		got := sink.acked[id]
		var preds, dlq int
		for _, topic := range got {
			switch topic {
			case "preds":
				preds++
			case "dlq":
				dlq++
			}
		}
		if bad[id] && (dlq != 1 || preds != 0) || !bad[id] && (preds != 1 || dlq != 0) {
			t.Fatalf("record %v (bad=%v): outputs %v", id, bad[id], got)
		}
	}
	for tp, off := range last {
		if final[tp] != off+1 {
			t.Fatalf("final commit of %v is %d, want %d", tp, final[tp], off+1)
		}
	}
}

// TestOperatorScoresIndependentOfBatching runs the same records through the operator with
// different batch sizes and chunkings and requires bit-identical scores.
func TestOperatorScoresIndependentOfBatching(t *testing.T) {
	s, fs := handbookSpec(t)
	model := openTestModel(t)
	recs, _, labels := testRecordsWithLabels(5000, rand.New(rand.NewPCG(1, 2)))
	var ref map[srcID]float32
	for i, maxSize := range []int{1, 7, 256, 4096} {
		sink := newRecordingSink()
		src := &memSource{recs: recs, rng: rand.New(rand.NewPCG(uint64(i), 9)), onCommit: func([]Offset) {}}
		op, err := New(Config{
			Schema: s, Features: fs, Model: model,
			Topics:   Topics{Predictions: "preds", DeadLetter: "dlq"},
			Batch:    scorer.BatcherConfig{MaxSize: maxSize},
			Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(uint64(i), 3))},
		}, src, sink)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = sink.scores
			continue
		}
		if len(sink.scores) != len(ref) {
			t.Fatalf("max batch %d: %d predictions, want %d", maxSize, len(sink.scores), len(ref))
		}
		for id, v := range ref {
			if sink.scores[id] != v {
				t.Fatalf("max batch %d: %v scored %v, with batch 1 %v", maxSize, id, sink.scores[id], v)
			}
		}
	}
}

// recordingSink keeps each prediction's score and features.
type recordingSink struct {
	mu     sync.Mutex
	scores map[srcID]float32
	feats  map[srcID][]float32
}

func newRecordingSink() *recordingSink {
	return &recordingSink{scores: map[srcID]float32{}, feats: map[srcID][]float32{}}
}

func (k *recordingSink) Produce(out *Output, ack func(error)) {
	if out.Topic == "preds" {
		var p Prediction
		if err := json.Unmarshal(out.Value, &p); err != nil {
			ack(err)
			return
		}
		id := srcID{TopicPartition{Topic: p.Source.Topic, Partition: p.Source.Partition}, p.Source.Offset}
		k.mu.Lock()
		k.scores[id] = p.Score
		k.feats[id] = p.Features
		k.mu.Unlock()
	}
	ack(nil)
}

func (k *recordingSink) Flush(context.Context) error { return nil }

// lateFailSink acknowledges every output at once except the first, which it fails only
// after lateBy; its Flush gives up when ctx ends, as a sink whose broker stopped answering.
type lateFailSink struct {
	lateBy time.Duration
	once   sync.Once
	failed chan struct{} // closed after the late ack returned
}

func (k *lateFailSink) Produce(_ *Output, ack func(error)) {
	first := false
	k.once.Do(func() { first = true })
	if !first {
		ack(nil)
		return
	}
	// A timer, not a signal from the test: anything that ordered this ack after Run's
	// return would hide from the race detector the very race the test is for.
	time.AfterFunc(k.lateBy, func() {
		ack(errors.New("broker refused the record"))
		close(k.failed)
	})
}

func (k *lateFailSink) Flush(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// An output that fails after the drain has given up reaches fail() while Run is reading
// the failure, or after it returned: under -race this checks that the two are
// synchronised. Run's verdict is an error whichever comes first.
func TestOperatorLateFailingAck(t *testing.T) {
	s := referenceSchema(t)
	fs := referenceFeatures(t, s)
	var recs []Record
	for i := range 5 {
		recs = append(recs, Record{Topic: "in", Offset: int64(i), Key: []byte("596"), Value: []byte(goodEvent)})
	}
	sink := &lateFailSink{lateBy: 200 * time.Millisecond, failed: make(chan struct{})}
	op, err := New(Config{
		Schema: s, Features: fs, Model: FeaturesOnly{N: fs.Len()},
		Topics: Topics{Predictions: "preds", DeadLetter: "dlq"}, Batch: scorer.BatcherConfig{MaxSize: 1},
		DrainTimeout: 20 * time.Millisecond,
	}, &sliceSource{recs: recs}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Run(context.Background()); err == nil {
		t.Fatal("Run returned nil with an output never acknowledged")
	}
	select {
	case <-sink.failed:
	case <-time.After(time.Minute):
		t.Fatal("the late ack never came")
	}
}
