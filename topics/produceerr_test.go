package topics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/pipelinetest"
	"github.com/streamscore/streamscore/pipeline/record"
)

// TestWriteErrorClassification: every failure a produce ack or a transaction's end can
// carry is classified as Kafka would have it, also when franz-go wraps it (a record timed
// out after retrying it), and a permanent one says what to change, naming the topic.
func TestWriteErrorClassification(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name      string
		err       error
		transient bool
		fix       string // a part of Fix, for a permanent error
	}{
		// a partition leader or a coordinator moves, a broker restarts
		{"not leader", kerr.NotLeaderForPartition, true, ""},
		{"leader not available", kerr.LeaderNotAvailable, true, ""},
		{"request timed out", kerr.RequestTimedOut, true, ""},
		{"not enough replicas", kerr.NotEnoughReplicas, true, ""},
		{"not enough replicas after append", kerr.NotEnoughReplicasAfterAppend, true, ""},
		{"network exception", kerr.NetworkException, true, ""},
		{"coordinator not available", kerr.CoordinatorNotAvailable, true, ""},
		{"coordinator loading", kerr.CoordinatorLoadInProgress, true, ""},
		{"not coordinator", kerr.NotCoordinator, true, ""},
		{"concurrent transactions", kerr.ConcurrentTransactions, true, ""},
		{"invalid producer epoch", kerr.InvalidProducerEpoch, true, ""},
		{"producer fenced", kerr.ProducerFenced, true, ""},
		{"invalid producer id mapping", kerr.InvalidProducerIDMapping, true, ""},
		{"out of order sequence", kerr.OutOfOrderSequenceNumber, true, ""},
		{"unknown producer id", kerr.UnknownProducerID, true, ""},
		{"transaction abortable", kerr.TransactionAbortable, true, ""},
		{"any other retriable code", kerr.UnstableOffsetCommit, true, ""},
		{"record delivery timeout", kgo.ErrRecordTimeout, true, ""},
		{"record timeout after not leader", fmt.Errorf("%w, last err: %w", kgo.ErrRecordTimeout, kerr.NotLeaderForPartition), true, ""},
		{"record retries", kgo.ErrRecordRetries, true, ""},
		{"aborted with the transaction (a rebalance)", fmt.Errorf("producing: %w", kgo.ErrAborting), true, ""},
		{"connection refused", dial, true, ""},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true, ""},
		{"broker closed the connection", io.EOF, true, ""},
		{"context deadline", context.DeadlineExceeded, true, ""},
		{"unknown error", errors.New("something new"), true, ""},
		{"unknown server error", kerr.UnknownServerError, true, ""},
		// an operator must change something
		{"topic ACL", kerr.TopicAuthorizationFailed, false, "WRITE and DESCRIBE on topic predictions"},
		{"cluster ACL", kerr.ClusterAuthorizationFailed, false, "IDEMPOTENT_WRITE"},
		{"transactional id ACL", kerr.TransactionalIDAuthorizationFailed, false, "transactional id"},
		{"group ACL", kerr.GroupAuthorizationFailed, false, "READ on the consumer group"},
		{"message too large", kerr.MessageTooLarge, false, "max.message.bytes on topic predictions"},
		{"record list too large", kerr.RecordListTooLarge, false, "max.message.bytes on topic predictions"},
		{"unknown topic", kerr.UnknownTopicOrPartition, false, "create topic predictions"},
		{"record timeout after unknown topic", fmt.Errorf("%w, last err: %w", kgo.ErrRecordTimeout, kerr.UnknownTopicOrPartition), false, "create topic predictions"},
		{"invalid record", kerr.InvalidRecord, false, "predictions"},
		{"invalid topic", kerr.InvalidTopicException, false, "predictions"},
		{"client closed", kgo.ErrClientClosed, false, "close the sink only after"},
		{"shutting down", context.Canceled, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := writeError("predictions", tc.err)
			we, ok := errors.AsType[*record.WriteError](err)
			if !ok {
				t.Fatalf("writeError(%v) = %T, want a *record.WriteError", tc.err, err)
			}
			if we.Topic != "predictions" || !errors.Is(err, tc.err) {
				t.Fatalf("WriteError{Topic: %q, Err: %v}: want the topic and the cause kept", we.Topic, we.Err)
			}
			if we.Transient != tc.transient || record.IsTransient(fmt.Errorf("wrapped: %w", err)) != tc.transient {
				t.Fatalf("%v: transient = %v, want %v", tc.err, we.Transient, tc.transient)
			}
			if !tc.transient && !strings.Contains(we.Fix, tc.fix) {
				t.Fatalf("%v: fix %q, want it to say %q", tc.err, we.Fix, tc.fix)
			}
			if tc.transient && we.Fix != "" {
				t.Fatalf("%v: a transient error with a fix %q", tc.err, we.Fix)
			}
			if !strings.Contains(err.Error(), tc.err.Error()) || (we.Fix != "" && !strings.Contains(err.Error(), we.Fix)) {
				t.Fatalf("message %q hides the cause %q or the fix %q", err, tc.err, we.Fix)
			}
		})
	}
	if writeError("x", nil) != nil {
		t.Fatal("writeError(nil) is not nil")
	}
	already := &record.WriteError{Topic: "a", Transient: false, Err: kerr.NotLeaderForPartition}
	if got := writeError("b", fmt.Errorf("again: %w", already)); !errors.Is(got, already) || record.IsTransient(got) {
		t.Fatalf("an error classified already was classified again: %v", got)
	}
}

// TestProducerAcksClassifiedErrors: the producer's failed acks are WriteErrors on the
// embedded broker: a record larger than a batch, a topic that does not exist, a closed
// producer.
func TestProducerAcksClassifiedErrors(t *testing.T) {
	fake, err := NewEmbeddedBroker(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	cc := ClientConfig{Brokers: fake.Addrs()}
	topic := newTopic(t, cc)
	p, err := NewProducer(cc, ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ack := func(out *record.Output) error {
		ch := make(chan error, 1)
		p.Produce(out, func(err error) { ch <- err })
		ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.Timeout)
		defer cancel()
		if err := p.Flush(ctx); err != nil {
			t.Fatalf("flushing: %v", err)
		}
		return <-ch
	}
	missing := randomName(t, "missing")
	for _, tc := range []struct {
		name string
		out  *record.Output
		fix  string
	}{
		{"too large", &record.Output{Topic: topic, Value: make([]byte, maxBatchBytes+1)}, "max.message.bytes on topic " + topic},
		{"missing topic", &record.Output{Topic: missing, Value: []byte("v")}, "create topic " + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ack(tc.out)
			we, ok := errors.AsType[*record.WriteError](err)
			if !ok || we.Transient || we.Topic != tc.out.Topic || !strings.Contains(we.Fix, tc.fix) {
				t.Fatalf("ack = %v (%T), want a permanent WriteError on %s whose fix says %q", err, err, tc.out.Topic, tc.fix)
			}
		})
	}
	if err := ack(&record.Output{Topic: topic, Value: []byte("fits")}); err != nil {
		t.Fatalf("a record that fits: %v", err)
	}
	p.Close()
	ch := make(chan error, 1)
	p.ProduceRaw(topic, nil, []byte("v"), nil, func(err error) { ch <- err })
	if err := <-ch; !errors.Is(err, kgo.ErrClientClosed) || record.IsTransient(err) {
		t.Fatalf("ProduceRaw on a closed producer acked %v, want a permanent WriteError wrapping ErrClientClosed", err)
	}
}

// TestTransactSessionFencedEnd: a session fenced by a newer producer with its
// transactional id (what a group moving partitions during a failover leads to) fails
// EndBatch with a transient WriteError rather than a bare one, aborts what it can, and
// closes without hanging; the newer session commits.
func TestTransactSessionFencedEnd(t *testing.T) {
	eachBroker(t, func(t *testing.T, cc ClientConfig) {
		input, output := newTopic(t, cc), newTopic(t, cc)
		ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.Timeout)
		defer cancel()
		if _, err := writer(t, cc)(ctx, []record.Record{{Topic: input, Value: []byte("in")}}); err != nil {
			t.Fatal(err)
		}
		txnID := randomName(t, "txn")
		open := func() *TransactSession {
			s, err := NewTransactSession(cc, TransactOptions{
				GroupOptions:    GroupOptions{Group: randomName(t, "group"), Topics: []string{input}, MaxPollRecords: 50},
				TransactionalID: txnID,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s
		}
		// produce begins a transaction (a Fetch) and writes one output in it.
		produce := func(s *TransactSession) error {
			if recs, err := s.Fetch(ctx); err != nil || len(recs) != 1 {
				t.Fatalf("fetching the input that begins the transaction: %d records, %v", len(recs), err)
			}
			ch := make(chan error, 1)
			s.Produce(&record.Output{Topic: output, Value: []byte("out")}, func(err error) { ch <- err })
			if err := s.Flush(ctx); err != nil {
				t.Fatalf("flushing: %v", err)
			}
			return <-ch
		}
		old := open()
		if err := produce(old); err != nil {
			t.Fatalf("the first session's output: %v", err)
		}
		newer := open()
		if err := produce(newer); err != nil {
			t.Fatalf("the newer session's output: %v", err)
		}
		committed, err := old.EndBatch(ctx)
		if err == nil || committed {
			t.Fatalf("the fenced session's EndBatch = %v, %v: want an error", committed, err)
		}
		if we, ok := errors.AsType[*record.WriteError](err); !ok || !we.Transient {
			t.Fatalf("the fenced session's EndBatch error %q (%T) is not a transient WriteError", err, err)
		}
		t.Logf("fenced: %v", err)
		if err := old.AbortBatch(ctx); err != nil {
			t.Logf("aborting again after the fence: %v", err) // allowed to fail: it is fenced
		}
		old.Close()
		old.Close() // twice, as a driver's error path and its defer may
		if committed, err := newer.EndBatch(ctx); err != nil || !committed {
			t.Fatalf("the newer session's EndBatch = %v, %v: want it committed", committed, err)
		}
	})
}
