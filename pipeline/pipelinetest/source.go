// Package pipelinetest is the contract suite that every pipeline.Source and pipeline.Sink
// must pass, whatever it reads from or writes to: one shared test, so that a new source or
// sink cannot quietly implement a weaker contract than the operator relies on (after
// watermill's pubsub/tests). It drives the implementation under test the way the operator
// does (rebalance handlers before the first Fetch and AllowRebalance after each, for a
// pipeline.GroupSource; EndBatch after each Fetch, for a pipeline.Transactional) and knows
// nothing of Kafka: the caller supplies how to write records and how to read outputs back.
//
// Every check polls a condition with a deadline rather than sleeping, and no goroutine
// started here calls t.Fatal.
package pipelinetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
)

// Timeout bounds every wait of the suite: for records to arrive, for a canceled Fetch to
// return, for acknowledgements. It is generous because a real broker on a busy machine may
// take seconds to elect a group coordinator; a contract broken outright still fails.
const Timeout = 30 * time.Second

// CancelTimeout bounds how long a Fetch may take to return once its ctx is canceled. A
// Fetch that ignores ctx never returns, so the bound only has to be far above a scheduling
// delay.
const CancelTimeout = 5 * time.Second

// SourceFeatures say which optional contracts a source has.
type SourceFeatures struct {
	// Bounded: the source reads what its topics held when it was opened, then returns
	// io.EOF, and keeps returning it (a backfill's Replay). Otherwise Fetch blocks until
	// records arrive (live sources).
	Bounded bool
}

// SourceSetup is one fresh place to read from, made for one test: an empty topic that
// nothing else writes to.
type SourceSetup struct {
	// Topic is the topic, with Partitions partitions (at least 2, so that per-partition
	// order is tested across partitions).
	Topic      string
	Partitions int32
	// Write writes the records durably, in the order given, each to its Partition of Topic
	// with its Key, Value, Headers and Timestamp (milliseconds), and returns the offset each
	// got. It is only called from the test goroutine.
	Write func(ctx context.Context, recs []record.Record) (offsets []int64, err error)
	// Open creates the source under test over Topic, reading from its start. Open registers
	// the source's Close with t.Cleanup.
	Open func(t *testing.T) pipeline.Source
}

// TestSource runs the Source contract on sources made by setup, one fresh setup per
// subtest:
//   - records carry topic, partition, offset, key, value, headers and timestamp as written;
//   - each partition's records come in offset order, each exactly once;
//   - a live source's Fetch blocks until there are records; a bounded one returns io.EOF
//     after its last record, and again on every later call, and does not return records
//     written after it was opened;
//   - canceling ctx makes a blocked Fetch return ctx's error promptly, and a Fetch with a
//     canceled ctx returns at once.
func TestSource(t *testing.T, f SourceFeatures, setup func(t *testing.T) SourceSetup) {
	t.Run("RecordsAsWrittenInPartitionOrder", func(t *testing.T) {
		testRecordsAsWritten(t, f, setup(t))
	})
	if f.Bounded {
		t.Run("BoundedEndsWithEOF", func(t *testing.T) { testBoundedEOF(t, setup(t)) })
		t.Run("BoundedEmptyEndsAtOnce", func(t *testing.T) { testBoundedEmpty(t, setup(t)) })
	} else {
		t.Run("FetchBlocksUntilRecords", func(t *testing.T) { testFetchBlocks(t, setup(t)) })
		t.Run("CancelUnblocksFetch", func(t *testing.T) { testCancelUnblocks(t, setup(t)) })
	}
	t.Run("CanceledContext", func(t *testing.T) { testCanceledContext(t, setup(t)) })
}

// driver calls Fetch as the operator does.
type driver struct {
	t       *testing.T
	src     pipeline.Source
	started bool
}

// fetch is one Fetch as the operator sees it. A transaction that EndBatch aborts (the
// Transactional contract allows it, for a rebalance or a transient coordinator error) is
// dropped and fetched again, as the operator does: its records come again.
func (d *driver) fetch(ctx context.Context) ([]record.Record, error) {
	gs, isGroup := d.src.(pipeline.GroupSource)
	if isGroup && !d.started {
		gs.SetRebalanceHandlers(func(context.Context, []record.TopicPartition) {}, func([]record.TopicPartition) {})
	}
	d.started = true
	for {
		recs, err := d.src.Fetch(ctx)
		if isGroup {
			gs.AllowRebalance()
		}
		tx, ok := d.src.(pipeline.Transactional)
		if !ok || len(recs) == 0 {
			return recs, err
		}
		// A fetch with records began a transaction, which the operator always ends.
		endCtx, cancel := context.WithTimeout(context.Background(), Timeout)
		committed, terr := tx.EndBatch(endCtx)
		cancel()
		switch {
		case terr != nil:
			return recs, fmt.Errorf("EndBatch: %w", terr)
		case committed:
			return recs, err
		case err != nil:
			return nil, err
		}
		d.t.Logf("EndBatch aborted a transaction of %d records; fetching them again", len(recs))
	}
}

// makeRecords returns n records spread over the partitions, with keys (one of them null),
// values (one of them empty), headers (none on some, a repeated key on others) and
// distinct millisecond timestamps in the recent past (old ones would meet retention).
func makeRecords(topic string, partitions int32, n int, tag string) []record.Record {
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	recs := make([]record.Record, n)
	for i := range recs {
		r := record.Record{
			Topic:     topic,
			Partition: int32(i) % partitions,
			Key:       fmt.Appendf(nil, "key-%d", i%7),
			Value:     fmt.Appendf(nil, `{"%s":%d}`, tag, i),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
		switch i % 5 {
		case 0:
			r.Key = nil
		case 1:
			r.Headers = []record.Header{{Key: "model.version", Value: []byte("3f2a9c1e")}, {Key: "seq", Value: fmt.Appendf(nil, "%d", i)}}
		case 2:
			r.Headers = []record.Header{{Key: "dup", Value: []byte("a")}, {Key: "dup", Value: []byte("b")}, {Key: "empty"}}
		case 3:
			r.Value = nil
		}
		recs[i] = r
	}
	return recs
}

func write(t *testing.T, s SourceSetup, recs []record.Record) []record.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	offsets, err := s.Write(ctx, recs)
	if err != nil {
		t.Fatalf("writing %d records: %v", len(recs), err)
	}
	if len(offsets) != len(recs) {
		t.Fatalf("Write returned %d offsets for %d records", len(offsets), len(recs))
	}
	out := make([]record.Record, len(recs))
	for i, r := range recs {
		r.Offset = offsets[i]
		out[i] = r
	}
	return out
}

type tpo struct {
	topic     string
	partition int32
	offset    int64
}

// checkFetched compares what was fetched with what was written: every written record
// exactly once, nothing else, each partition in offset order.
func checkFetched(t *testing.T, written, fetched []record.Record) {
	t.Helper()
	want := make(map[tpo]record.Record, len(written))
	for _, r := range written {
		want[tpo{r.Topic, r.Partition, r.Offset}] = r
	}
	seen := make(map[tpo]bool, len(fetched))
	last := map[int32]int64{}
	for i, got := range fetched {
		id := tpo{got.Topic, got.Partition, got.Offset}
		if prev, ok := last[got.Partition]; ok && got.Offset <= prev {
			t.Fatalf("record %d: %s/%d offset %d after offset %d: per-partition order broken", i, got.Topic, got.Partition, got.Offset, prev)
		}
		last[got.Partition] = got.Offset
		if seen[id] {
			t.Fatalf("record %d: %s/%d@%d fetched twice", i, got.Topic, got.Partition, got.Offset)
		}
		seen[id] = true
		w, ok := want[id]
		if !ok {
			t.Fatalf("record %d: %s/%d@%d was never written", i, got.Topic, got.Partition, got.Offset)
		}
		if err := sameRecord(w, got); err != nil {
			t.Fatalf("record %s/%d@%d: %v", got.Topic, got.Partition, got.Offset, err)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("fetched %d of the %d records written", len(seen), len(want))
	}
}

func sameRecord(want, got record.Record) error {
	switch {
	case !bytes.Equal(want.Key, got.Key):
		return fmt.Errorf("key %q, want %q", got.Key, want.Key)
	case !bytes.Equal(want.Value, got.Value):
		return fmt.Errorf("value %q, want %q", got.Value, want.Value)
	case !want.Timestamp.Equal(got.Timestamp):
		return fmt.Errorf("timestamp %v, want %v", got.Timestamp, want.Timestamp)
	}
	return sameHeaders(want.Headers, got.Headers)
}

func sameHeaders(want, got []record.Header) error {
	if len(want) != len(got) {
		return fmt.Errorf("headers %v, want %v", got, want)
	}
	for i := range want {
		if want[i].Key != got[i].Key || !bytes.Equal(want[i].Value, got[i].Value) {
			return fmt.Errorf("header %d: %s=%q, want %s=%q", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
	return nil
}

// fetchAll fetches until n records came (a live source) or io.EOF (a bounded one).
func fetchAll(t *testing.T, d *driver, n int, bounded bool) []record.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var all []record.Record
	for bounded || len(all) < n {
		recs, err := d.fetch(ctx)
		all = append(all, recs...)
		if bounded && errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Fetch after %d of %d records: %v", len(all), n, err)
		}
		if len(recs) == 0 && !bounded {
			t.Fatalf("Fetch returned no records and no error after %d of %d records: it must block until it has some", len(all), n)
		}
	}
	return all
}

func testRecordsAsWritten(t *testing.T, f SourceFeatures, s SourceSetup) {
	if s.Partitions < 2 {
		t.Fatalf("setup made %d partitions; the suite needs at least 2", s.Partitions)
	}
	written := write(t, s, makeRecords(s.Topic, s.Partitions, 300, "v"))
	d := &driver{t: t, src: s.Open(t)}
	checkFetched(t, written, fetchAll(t, d, len(written), f.Bounded))
}

func testBoundedEOF(t *testing.T, s SourceSetup) {
	before := write(t, s, makeRecords(s.Topic, s.Partitions, 40, "before"))
	d := &driver{t: t, src: s.Open(t)}
	write(t, s, makeRecords(s.Topic, s.Partitions, 20, "after")) // not for this source
	checkFetched(t, before, fetchAll(t, d, len(before), true))
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for i := range 3 {
		if recs, err := d.fetch(ctx); len(recs) != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("Fetch %d after io.EOF = %d records, %v; want none and io.EOF again", i+1, len(recs), err)
		}
	}
}

func testBoundedEmpty(t *testing.T, s SourceSetup) {
	d := &driver{t: t, src: s.Open(t)}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if recs, err := d.fetch(ctx); len(recs) != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("Fetch over an empty topic = %d records, %v; want none and io.EOF", len(recs), err)
	}
}

type fetchResult struct {
	recs []record.Record
	err  error
}

// goFetch runs one Fetch on its own goroutine; the result comes on the channel.
func goFetch(ctx context.Context, d *driver) <-chan fetchResult {
	ch := make(chan fetchResult, 1)
	go func() {
		recs, err := d.fetch(ctx)
		ch <- fetchResult{recs, err}
	}()
	return ch
}

func testFetchBlocks(t *testing.T, s SourceSetup) {
	d := &driver{t: t, src: s.Open(t)}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	res := goFetch(ctx, d)
	// Whatever the timing, a Fetch that returned before these records were written has
	// returned without records, which the contract forbids.
	written := write(t, s, makeRecords(s.Topic, s.Partitions, 10, "late"))
	r := <-res
	if r.err != nil || len(r.recs) == 0 {
		t.Fatalf("Fetch = %d records, %v; want it to block until records arrive, then return them", len(r.recs), r.err)
	}
	rest := fetchAll(t, d, len(written)-len(r.recs), false)
	checkFetched(t, written, append(r.recs, rest...))
}

func testCancelUnblocks(t *testing.T, s SourceSetup) {
	d := &driver{t: t, src: s.Open(t)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := goFetch(ctx, d)
	// Give the Fetch a chance to block (joining a group may take a while): whichever it
	// does, cancel must make it return.
	select {
	case r := <-res:
		t.Fatalf("Fetch on an empty topic returned %d records, %v before ctx ended", len(r.recs), r.err)
	case <-time.After(jitter(t)):
	}
	cancel()
	select {
	case r := <-res:
		if len(r.recs) != 0 || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("canceled Fetch = %d records, %v; want context.Canceled", len(r.recs), r.err)
		}
	case <-time.After(CancelTimeout):
		t.Fatalf("Fetch did not return within %v of ctx being canceled", CancelTimeout)
	}
}

// jitter is a short time, so that cancel meets Fetch in different states: it differs
// between the sources (each test's name seeds it) and is the same on every run of one,
// so that a failure reproduces. The test log says which it was.
func jitter(t *testing.T) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	seed := h.Sum64()
	d := time.Duration(rand.New(rand.NewPCG(seed, 0)).IntN(200)) * time.Millisecond
	t.Logf("cancel after %v (seed %d, from the test's name)", d, seed)
	return d
}

func testCanceledContext(t *testing.T, s SourceSetup) {
	write(t, s, makeRecords(s.Topic, s.Partitions, 10, "v"))
	d := &driver{t: t, src: s.Open(t)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	select {
	case r := <-goFetch(ctx, d):
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Fetch with a canceled ctx = %d records, %v; want context.Canceled", len(r.recs), r.err)
		}
	case <-time.After(CancelTimeout):
		t.Fatalf("Fetch with a canceled ctx did not return within %v", CancelTimeout)
	}
}
