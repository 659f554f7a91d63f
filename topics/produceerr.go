package topics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// writeError wraps err, the failure of a write to topic (a produce's ack; "" for a
// transaction's end), in a *record.WriteError that says whether Kafka can recover from it
// by waiting and, when it cannot, what to change. nil stays nil; an error already
// classified is returned as it is.
func writeError(topic string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*record.WriteError](err); ok {
		return err
	}
	transient, fix := classifyWrite(topic, err)
	return &record.WriteError{Topic: topic, Transient: transient, Fix: fix, Err: err}
}

// permanentWrite are the broker answers that no wait cures, with what to change. They are
// checked before anything else: franz-go wraps the last of them in ErrRecordTimeout when it
// retried one until the delivery timeout (UNKNOWN_TOPIC_OR_PARTITION, which kerr calls
// retriable because a new topic takes a moment to appear everywhere).
var permanentWrite = []struct {
	err error
	fix func(topic string) string
}{
	{kerr.TopicAuthorizationFailed, func(t string) string {
		return "grant this client's principal WRITE and DESCRIBE on topic " + t + " (an ACL)"
	}},
	{kerr.ClusterAuthorizationFailed, func(string) string {
		return "grant this client's principal IDEMPOTENT_WRITE on the cluster (an ACL): the producer is idempotent"
	}},
	{kerr.TransactionalIDAuthorizationFailed, func(string) string {
		return "grant this client's principal WRITE and DESCRIBE on its transactional id (an ACL)"
	}},
	{kerr.GroupAuthorizationFailed, func(string) string {
		return "grant this client's principal READ on the consumer group (an ACL): exactly-once commits the group's offsets"
	}},
	{kerr.MessageTooLarge, tooLarge},
	{kerr.RecordListTooLarge, tooLarge},
	{kerr.UnknownTopicOrPartition, func(t string) string {
		return "create topic " + t + " (the broker does not create topics on write)"
	}},
	{kerr.InvalidTopicException, func(t string) string {
		return "topic name " + t + " is not valid in Kafka: configure another"
	}},
	{kerr.InvalidRecord, func(t string) string {
		return "the broker rejected the record on topic " + t + " as invalid (a compacted topic needs a key; check its cleanup.policy and message format)"
	}},
	{kerr.UnsupportedCompressionType, func(t string) string {
		return "topic " + t + " or its broker does not accept this compression: set the producer's compression to one it supports, or none"
	}},
	{kerr.PolicyViolation, func(t string) string {
		return "a broker policy rejected the write to topic " + t + ": see the broker's create/alter policy"
	}},
	{kgo.ErrClientClosed, func(string) string {
		return "the client was closed with outputs in flight: close the sink only after the operator's Run returned"
	}},
}

func tooLarge(t string) string {
	return fmt.Sprintf("raise max.message.bytes on topic %s (and message.max.bytes on the brokers), or lower the producer's max batch bytes (%d) below it", t, maxBatchBytes)
}

// transientWrite are the failures Kafka recovers from by itself, for certain. Most are
// also kerr-retriable; those that are not (a fenced or stale producer epoch, an out of
// order sequence, a transaction the coordinator gave up) are what a partition leader or
// a transaction coordinator moving leaves behind: a new producer epoch after a restart
// from the last commit cures them.
var transientWrite = []error{
	kerr.NotLeaderForPartition, kerr.LeaderNotAvailable, kerr.RequestTimedOut,
	kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.NetworkException,
	kerr.KafkaStorageError, kerr.FencedLeaderEpoch,
	kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress, kerr.NotCoordinator,
	kerr.ConcurrentTransactions, kerr.InvalidProducerEpoch, kerr.ProducerFenced,
	kerr.InvalidProducerIDMapping, kerr.OutOfOrderSequenceNumber, kerr.UnknownProducerID,
	kerr.TransactionAbortable, kerr.InvalidTxnState,
	kgo.ErrRecordTimeout, kgo.ErrRecordRetries, kgo.ErrAborting,
	context.DeadlineExceeded, io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH, syscall.ENETUNREACH,
}

// classifyWrite says whether Kafka can recover from err, a failed write to topic, by
// waiting, and if not, what to change.
//
// An error it does not know is transient. The operator stops on it either way and nothing
// past it is committed, so a wrong guess costs little: taken for transient, a permanent
// fault makes the driver wait its bounded failover timeout and then exit with this same
// error; taken for permanent, a fault Kafka would have cured by itself (new ones come with
// every client and broker version) turns into an exit, which the design forbids ("a fault
// Kafka recovers from is waited out"). The permanent faults that matter in practice (ACLs,
// sizes, missing topics) are listed, so they exit at once with a Fix.
func classifyWrite(topic string, err error) (transient bool, fix string) {
	for _, p := range permanentWrite {
		if errors.Is(err, p.err) {
			return false, p.fix(topic)
		}
	}
	if errors.Is(err, context.Canceled) {
		return false, "" // the caller is shutting down: nothing to wait for
	}
	for _, t := range transientWrite {
		if errors.Is(err, t) {
			return true, ""
		}
	}
	// Transient for a reason of their own, not by the default below: were the default
	// ever changed, these must stay transient.
	if _, ok := errors.AsType[net.Error](err); ok {
		return true, ""
	}
	if kerr.IsRetriable(err) || kgo.IsRetryableBrokerErr(err) {
		return true, ""
	}
	return true, "" // not known: see above
}
