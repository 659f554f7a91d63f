package pipeline

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// endTransaction waits until every output of the fetched records is acknowledged, then
// commits them with their offsets in one transaction. On an error the transaction stays
// open, and Run aborts it (abortOpenTransaction) once nothing produces any more.
func (o *Operator) endTransaction(ctx context.Context, tx Transactional) error {
	drain, cancel := context.WithTimeout(ctx, o.cfg.TransactionTimeout)
	defer cancel()
	if err := o.waitDrained(drain); err != nil {
		return fmt.Errorf("exactly-once: %w", err)
	}
	if err := o.failure(); err != nil {
		// Drained, but something failed meanwhile (an output the operator could not even
		// encode): Run aborts the transaction, which must not commit.
		return err
	}
	committed, err := tx.EndBatch(ctx)
	if err != nil {
		return err
	}
	if committed {
		o.st.Transactions.Add(1)
	} else {
		o.st.Aborted.Add(1)
		if o.drift != nil {
			// the fetch's records come again: counted twice, the open windows would lie
			o.drift.forgetAll()
		}
	}
	return nil
}

// commitLoop commits the acknowledged positions every CommitInterval. A failed commit
// is only logged: the watermarks stay, and the next tick commits them with whatever
// moved since.
func (o *Operator) commitLoop(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(o.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
			if err := o.commitNow(ctx, nil); err != nil {
				o.log.Warn("committing offsets; will retry", zap.Error(err))
			}
		}
	}
}

// commitNow commits the watermarks that moved, for the partitions in only (nil: all).
func (o *Operator) commitNow(ctx context.Context, only map[TopicPartition]bool) error {
	c, ok := o.src.(Committer)
	if !ok {
		return nil
	}
	o.commit.Lock()
	defer o.commit.Unlock()
	offs := o.tr.uncommitted(only)
	if len(offs) == 0 {
		return nil
	}
	if err := c.Commit(ctx, offs); err != nil {
		o.tr.rollback(offs)
		return err
	}
	return nil
}

// revoked runs inside the group's rebalance: it waits (bounded) until the records already
// fetched from the revoked partitions are done, commits them, and forgets the partitions.
func (o *Operator) revoked(ctx context.Context, tps []TopicPartition) {
	if len(tps) == 0 {
		return
	}
	wait, cancel := context.WithTimeout(ctx, o.cfg.DrainTimeout)
	defer cancel()
	only := make(map[TopicPartition]bool, len(tps))
	for _, tp := range tps {
		only[tp] = true
		select {
		case <-o.tr.drained(tp):
		case <-wait.Done():
			o.log.Warn("revoked partition still has records in flight; their outputs may be repeated by the next owner",
				zap.String("topic", tp.Topic), zap.Int32("partition", tp.Partition))
		case <-o.failed:
		}
	}
	if o.state != nil {
		o.state.invalidate(tps)
	}
	if err := o.commitNow(wait, only); err != nil {
		o.log.Warn("committing revoked partitions", zap.Error(err))
	}
	o.tr.forget(tps)
	// A partition assigned again gets a marker at its first scored record, whatever
	// version scores it: the next owner in between may have used another.
	o.partVer.forget(tps)
	if o.drift != nil {
		o.drift.forget(tps)
	}
}

// lost forgets partitions without committing: another member may own them already.
func (o *Operator) lost(tps []TopicPartition) {
	if o.state != nil {
		o.state.invalidate(tps)
	}
	o.tr.forget(tps)
	o.partVer.forget(tps)
	if o.drift != nil {
		o.drift.forget(tps)
	}
}
