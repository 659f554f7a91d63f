package pipelinetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
)

// SinkFeatures say which optional contracts a sink has.
type SinkFeatures struct {
	// ValuesOnly: the sink keeps only each output's value (a file of JSON lines), so keys,
	// headers and partitions are not compared on read-back.
	ValuesOnly bool
	// AckWhenBuffered: the sink acknowledges an output once it is buffered and writes it out
	// on Flush, so a failing destination shows in Flush's error rather than in the acks
	// (pipeline.FileSink). The pipeline.Sink contract asks for an ack only when durably
	// written; a sink with this feature is weaker, and says so here.
	AckWhenBuffered bool
}

// SinkSetup is one fresh place to write to, made for one test.
type SinkSetup struct {
	// Topic is the output topic the suite produces to, with Partitions partitions; outputs
	// sent elsewhere may be dropped by the sink (a file sink writes predictions only).
	Topic      string
	Partitions int32
	// Sink is the sink under test; the setup registers its Close with t.Cleanup.
	Sink pipeline.Sink
	// Commit, when set, is called after Flush and before ReadBack: a transactional sink
	// ends its transaction here (its outputs are invisible before).
	Commit func(ctx context.Context) error
	// ReadBack returns every record durably written to Topic so far, each partition in
	// offset order, with Topic, Partition and Offset set (only Value for ValuesOnly).
	// Nil: the sink keeps nothing to read (pipeline.DiscardSink).
	ReadBack func(ctx context.Context) ([]record.Record, error)
	// Failing, when set, returns a sink like Sink whose writes cannot succeed (a closed
	// client, no transaction, a broken file): its acks must say so.
	Failing func(t *testing.T) pipeline.Sink
}

// TestSink runs the Sink contract on sinks made by setup, one fresh setup per subtest:
//   - Produce calls ack exactly once per output, and Flush returns only after every ack;
//   - an ack is nil only for an output that can be read back (after Commit, once the
//     transaction is visible), as written: key, value,
//     headers, and for keyed partitioning every output of a key on one partition;
//   - the outputs of each key are read back in the order they were produced;
//   - a sink that cannot write acknowledges with an error, never nil.
//
// A sink that is also a record.AckProducer runs AckOnceAndReadBack and
// FailingSinkAcksWithError a second time through ProduceAck, under the same contract.
func TestSink(t *testing.T, f SinkFeatures, setup func(t *testing.T) SinkSetup) {
	t.Run("AckOnceAndReadBack", func(t *testing.T) { testAckAndReadBack(t, f, setup(t), false) })
	t.Run("AckOnceAndReadBackViaAcker", func(t *testing.T) {
		s := setup(t)
		if _, ok := s.Sink.(record.AckProducer); !ok {
			t.Skip("the sink has no ProduceAck")
		}
		testAckAndReadBack(t, f, s, true)
	})
	t.Run("FlushWithNothingProduced", func(t *testing.T) {
		s := setup(t)
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := s.Sink.Flush(ctx); err != nil {
			t.Fatalf("Flush with nothing produced = %v", err)
		}
	})
	t.Run("FailingSinkAcksWithError", func(t *testing.T) {
		s := setup(t)
		if s.Failing == nil {
			t.Skip("the setup has no failing variant of this sink")
		}
		testFailing(t, f, s.Failing(t), false)
	})
	t.Run("FailingSinkAcksWithErrorViaAcker", func(t *testing.T) {
		s := setup(t)
		if s.Failing == nil {
			t.Skip("the setup has no failing variant of this sink")
		}
		sink := s.Failing(t)
		if _, ok := sink.(record.AckProducer); !ok {
			t.Skip("the sink has no ProduceAck")
		}
		testFailing(t, f, sink, true)
	})
}

// outputValue is the value of output seq with key: JSON, so that a file sink can carry it,
// and naming its key, so that order by key is checked where keys are not kept.
type outputValue struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

func makeOutputs(topic string, n int) []*record.Output {
	outs := make([]*record.Output, n)
	for i := range outs {
		key := fmt.Sprintf("customer-%d", i%11)
		v, err := json.Marshal(outputValue{Key: key, Seq: i})
		if err != nil {
			panic(err) // cannot fail for this type
		}
		out := &record.Output{
			Topic: topic, Key: []byte(key), Value: v,
			Headers: []record.Header{{Key: "model.version", Value: []byte("3f2a9c1e")}, {Key: "seq", Value: fmt.Appendf(nil, "%d", i)}},
			Source:  &record.Record{Topic: "input", Partition: int32(i % 3), Offset: int64(i)},
		}
		if i%4 == 0 {
			out.Headers = append(out.Headers, record.Header{Key: "empty"})
		}
		outs[i] = out
	}
	return outs
}

// acks counts the acknowledgements of each output; ack may be called from any goroutine.
type acks struct {
	count []atomic.Int32
	mu    sync.Mutex
	errs  []error // first error of each output
}

func newAcks(n int) *acks { return &acks{count: make([]atomic.Int32, n), errs: make([]error, n)} }

func (a *acks) ack(i int) func(error) {
	return func(err error) { a.record(i, err) }
}

func (a *acks) record(i int, err error) {
	a.count[i].Add(1)
	if err != nil {
		a.mu.Lock()
		if a.errs[i] == nil {
			a.errs[i] = err
		}
		a.mu.Unlock()
	}
}

// acker is output i's record.Acker.
type acker struct {
	a *acks
	i int
}

func (k acker) Ack(err error) { k.a.record(k.i, err) }

// produce hands output i to sink, through ProduceAck when viaAcker (the sink has it).
func (a *acks) produce(sink pipeline.Sink, out *record.Output, i int, viaAcker bool) {
	if viaAcker {
		sink.(record.AckProducer).ProduceAck(out, acker{a, i})
		return
	}
	sink.Produce(out, a.ack(i))
}

// check fails unless every output was acknowledged exactly once; it returns how many
// acknowledgements carried an error.
func (a *acks) check(t *testing.T, when string) (failed int) {
	t.Helper()
	for i := range a.count {
		if c := a.count[i].Load(); c != 1 {
			t.Fatalf("%s: output %d acknowledged %d times, want exactly once", when, i, c)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, err := range a.errs {
		if err != nil {
			failed++
		}
	}
	return failed
}

func (a *acks) firstErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, err := range a.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func testAckAndReadBack(t *testing.T, f SinkFeatures, s SinkSetup, viaAcker bool) {
	const n = 500
	outs := makeOutputs(s.Topic, n)
	a := newAcks(n)
	for i, out := range outs {
		a.produce(s.Sink, out, i, viaAcker)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := s.Sink.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	// Flush waits for every ack: no polling here.
	if failed := a.check(t, "after Flush"); failed > 0 {
		t.Fatalf("%d of %d outputs acknowledged with an error, first: %v", failed, n, a.firstErr())
	}
	if s.Commit != nil {
		if err := s.Commit(ctx); err != nil {
			t.Fatalf("committing: %v", err)
		}
	}
	if s.ReadBack == nil {
		return
	}
	// What was acknowledged is durable: it is all there on the first read. A committed
	// transaction becomes readable when the coordinator has written its markers, which
	// Kafka does after EndTxn answers: that read polls until then.
	got, err := s.ReadBack(ctx)
	for s.Commit != nil && err == nil && len(got) < n && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond) // a poll interval, not a barrier: the loop checks
		got, err = s.ReadBack(ctx)
	}
	if err != nil {
		t.Fatalf("reading back: %v", err)
	}
	checkReadBack(t, f, outs, got)
	a.check(t, "after reading back") // no late second ack
}

func checkReadBack(t *testing.T, f SinkFeatures, outs []*record.Output, got []record.Record) {
	t.Helper()
	if len(got) != len(outs) {
		t.Fatalf("read back %d records, want the %d acknowledged", len(got), len(outs))
	}
	seen := make([]bool, len(outs))
	lastSeq := map[string]int{}       // per key, in read-back order
	partitionOf := map[string]int32{} // per key
	lastOffset := map[int32]int64{}
	for i, r := range got {
		var v outputValue
		if err := json.Unmarshal(r.Value, &v); err != nil || v.Seq < 0 || v.Seq >= len(outs) {
			t.Fatalf("record %d: value %q is no output of the suite (%v)", i, r.Value, err)
		}
		if seen[v.Seq] {
			t.Fatalf("record %d: output %d written twice", i, v.Seq)
		}
		seen[v.Seq] = true
		want := outs[v.Seq]
		if !bytes.Equal(r.Value, want.Value) {
			t.Fatalf("record %d: value %q, want %q", i, r.Value, want.Value)
		}
		if prev, ok := lastSeq[v.Key]; ok && v.Seq < prev {
			t.Fatalf("key %s: output %d read back after output %d: per-key order broken", v.Key, v.Seq, prev)
		}
		lastSeq[v.Key] = v.Seq
		if f.ValuesOnly {
			continue
		}
		if r.Topic != want.Topic {
			t.Fatalf("output %d: topic %q, want %q", v.Seq, r.Topic, want.Topic)
		}
		if !bytes.Equal(r.Key, want.Key) {
			t.Fatalf("output %d: key %q, want %q", v.Seq, r.Key, want.Key)
		}
		if err := sameHeaders(want.Headers, r.Headers); err != nil {
			t.Fatalf("output %d: %v", v.Seq, err)
		}
		if p, ok := partitionOf[v.Key]; ok && p != r.Partition {
			t.Fatalf("key %s: outputs on partitions %d and %d: a key's outputs must share a partition to keep their order", v.Key, p, r.Partition)
		}
		partitionOf[v.Key] = r.Partition
		if prev, ok := lastOffset[r.Partition]; ok && r.Offset <= prev {
			t.Fatalf("ReadBack returned partition %d out of offset order (%d after %d)", r.Partition, r.Offset, prev)
		}
		lastOffset[r.Partition] = r.Offset
	}
}

func testFailing(t *testing.T, f SinkFeatures, sink pipeline.Sink, viaAcker bool) {
	const n = 20
	outs := makeOutputs("any", n)
	a := newAcks(n)
	for i, out := range outs {
		a.produce(sink, out, i, viaAcker)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	flushErr := sink.Flush(ctx)
	failed := a.check(t, "after Flush")
	switch {
	case f.AckWhenBuffered && flushErr == nil && failed < n:
		t.Fatalf("a sink that cannot write acknowledged %d of %d outputs with nil, and Flush returned nil", n-failed, n)
	case !f.AckWhenBuffered && failed < n:
		t.Fatalf("a sink that cannot write acknowledged %d of %d outputs with nil (Flush: %v)", n-failed, n, flushErr)
	}
}
