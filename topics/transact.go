package topics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/record"
)

// TransactSession is the exactly-once source and sink in one: a consumer group whose
// consumed offsets are committed in the same Kafka transaction as the outputs (franz-go's
// GroupTransactSession, KIP-447). Each Fetch begins a transaction; EndBatch commits it with
// the offsets of everything fetched, or aborts it when the group rebalanced meanwhile or the
// coordinator answered with a transient error (CONCURRENT_TRANSACTIONS right after the
// previous transaction, a coordinator loading or moving), in which case those records are
// fetched again and read_committed consumers never see the aborted outputs. A restarted instance with the same transactional id fences its zombie
// predecessor. It implements pipeline.Source, pipeline.Sink and pipeline.Transactional.
type TransactSession struct {
	s    *kgo.GroupTransactSession
	log  *zap.Logger
	max  int
	acks inflight

	closeOnce sync.Once
}

// TransactOptions configure a TransactSession.
type TransactOptions struct {
	GroupOptions
	// TransactionalID identifies this instance's producer; a restarted instance must reuse
	// it to fence its predecessor. Required.
	TransactionalID string
	// TransactionTimeout bounds a transaction (default DefaultTransactionTimeout).
	TransactionTimeout time.Duration
}

// DefaultTransactionTimeout is the transaction timeout of the exactly-once session: past
// it the transaction coordinator aborts an open transaction.
const DefaultTransactionTimeout = 30 * time.Second

// NewTransactSession connects the session; it joins the group on the first Fetch.
func NewTransactSession(cc ClientConfig, o TransactOptions) (*TransactSession, error) {
	if o.TransactionalID == "" {
		return nil, errors.New("exactly-once: a transactional id is required")
	}
	if o.TransactionTimeout <= 0 {
		o.TransactionTimeout = DefaultTransactionTimeout
	}
	opts, err := cc.opts("transact")
	if err != nil {
		return nil, err
	}
	gopts, err := o.groupOpts(&cc)
	if err != nil {
		return nil, fmt.Errorf("exactly-once: %w", err)
	}
	opts = append(opts, gopts...)
	opts = append(opts,
		kgo.TransactionalID(o.TransactionalID),
		kgo.TransactionTimeout(o.TransactionTimeout),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
	)
	s, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating transactional session: %w", err)
	}
	t := &TransactSession{s: s, log: zap.NewNop(), max: o.MaxPollRecords}
	if cc.Logger != nil {
		t.log = cc.Logger
	}
	return t, nil
}

// Fetch implements pipeline.Source: it polls, and begins a transaction for what it returns.
func (t *TransactSession) Fetch(ctx context.Context) ([]record.Record, error) {
	for {
		fs := t.s.PollRecords(ctx, t.max)
		if fs.IsClientClosed() {
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil && fs.NumRecords() == 0 {
			return nil, err
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.log.Warn("fetch error; franz-go retries", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
		})
		recs := convert(fs)
		if len(recs) == 0 {
			continue
		}
		if err := t.s.Begin(); err != nil {
			return nil, fmt.Errorf("beginning a transaction: %w", err)
		}
		return recs, nil
	}
}

// Produce implements pipeline.Sink inside the open transaction.
func (t *TransactSession) Produce(out *record.Output, ack func(error)) {
	t.acks.produce(t.s.Produce, toKgo(out), ack)
}

// ProduceAck implements record.AckProducer inside the open transaction.
func (t *TransactSession) ProduceAck(out *record.Output, a record.Acker) {
	t.acks.produceOutput(t.s.Produce, out, a)
}

// Flush implements pipeline.Sink: it waits for every output's acknowledgement, those
// refused outside a transaction included.
func (t *TransactSession) Flush(ctx context.Context) error {
	if err := t.s.Client().Flush(ctx); err != nil {
		return err
	}
	return t.acks.wait(ctx)
}

// EndBatch implements pipeline.Transactional: it commits the open transaction with the
// offsets of every record fetched, or aborts it after a rebalance or a transient
// coordinator error (committed false; the consumer rewinds to the committed offsets and the
// records come again).
//
// When the end itself fails (the producer was fenced or its epoch is stale because the
// group moved partitions during a failover, a coordinator stayed away past the retries),
// EndBatch ends the transaction again as an abort, franz-go's documented recovery: that
// aborts what is still open broker-side, or reloads the producer id, whose new epoch
// fences it, and rewinds the consumer to the committed offsets. It then returns the first
// failure as a *record.WriteError (Topic empty), which says whether waiting helps; nothing
// of the transaction is committed.
func (t *TransactSession) EndBatch(ctx context.Context) (bool, error) {
	committed, err := t.s.End(ctx, kgo.TryCommit)
	if err != nil {
		t.abort(ctx, err)
		return false, fmt.Errorf("ending the transaction: %w", writeError("", err))
	}
	if !committed {
		t.log.Info("transaction aborted (a rebalance or a transient coordinator error); its records will be fetched again")
	}
	return committed, nil
}

// AbortBatch implements pipeline.Transactional: it aborts the open transaction, if any,
// and rewinds the consumer to the committed offsets. The operator calls it when it stops
// with a transaction open (an output failed to write), so that nothing of it commits and
// the session can begin again. Its error is a *record.WriteError (Topic empty).
func (t *TransactSession) AbortBatch(ctx context.Context) error {
	// Not ctx's cancellation: the operator cancels it on the very failure that calls for
	// the abort.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if _, err := t.s.End(actx, kgo.TryAbort); err != nil {
		return fmt.Errorf("aborting the transaction: %w", writeError("", err))
	}
	return nil
}

// abortTimeout bounds an abort after a failure: it must not hold up the stop that follows,
// and a transaction left open is aborted by its coordinator after the transaction timeout
// anyway (or fenced by the next producer with this transactional id).
const abortTimeout = 10 * time.Second

// abort ends the transaction as an abort after End failed with cause, logging (not
// returning) a failure of the abort: the caller reports cause.
func (t *TransactSession) abort(ctx context.Context, cause error) {
	if err := t.AbortBatch(ctx); err != nil {
		t.log.Warn("aborting the transaction after its end failed; the coordinator aborts it after the transaction timeout",
			zap.NamedError("end_error", cause), zap.Error(err))
	}
}

// Close leaves the group and closes the client. Call it after the operator stopped. It
// may be called more than once, after a failed transaction included: records still
// unacknowledged are failed (kgo.ErrClientClosed), the open transaction is left to its
// coordinator.
func (t *TransactSession) Close() { t.closeOnce.Do(t.s.Close) }
