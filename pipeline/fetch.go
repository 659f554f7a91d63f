package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
)

func (o *Operator) fetchLoop(ctx, work context.Context) error {
	dec := NewDecoder(o.cfg.Schema)
	ev := dec.NewEvent()
	gs, isGroup := o.src.(GroupSource)
	for {
		recs, err := o.src.Fetch(ctx)
		// Records are registered for commit tracking before a rebalance held back by this
		// fetch may proceed, so the revoke handler waits for them.
		handles := make([]handle, len(recs))
		for i := range recs {
			r := &recs[i]
			handles[i] = o.tr.begin(TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset, r.LeaderEpoch, r.Timestamp)
		}
		if isGroup {
			gs.AllowRebalance()
		}
		if o.state != nil {
			o.state.newFetch()
		}
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			if len(recs) == 0 {
				return nil
			}
		} else if err != nil {
			return fmt.Errorf("fetching records: %w", err)
		}
		slab := make([]float32, len(recs)*o.nFeat)
		var lastTopic string
		var inCount float64
		for i := range recs {
			r := &recs[i]
			if r.Topic != lastTopic {
				if inCount > 0 {
					o.m.recordsIn.WithLabelValues(lastTopic).Add(inCount)
				}
				lastTopic, inCount = r.Topic, 0
			}
			inCount++
			feat := slab[i*o.nFeat : (i+1)*o.nFeat : (i+1)*o.nFeat]
			err := dec.CheckKey(r.Key)
			if err == nil {
				err = dec.Decode(r.Value, r.Timestamp, ev)
			}
			if err == nil {
				err = dec.CheckKeyField(r.Key, ev)
			}
			if err == nil {
				err = o.cfg.Features.Extract(ev, feat)
			}
			if err != nil {
				o.deadLetter(r, handles[i], err)
				continue
			}
			if o.state != nil {
				// work, not ctx: a record already fetched is finished after a stop request.
				if err := o.state.features(work, r, ev, feat); err != nil {
					return err
				}
			}
			if o.cfg.FeatureTap != nil {
				if err := o.cfg.FeatureTap(r, ev, feat); err != nil {
					return fmt.Errorf("feature tap: %w", err)
				}
			}
			if err := o.batch.Submit(work, row{h: handles[i], rec: r, eventTime: ev.Time, feat: feat}); err != nil {
				return err
			}
		}
		if inCount > 0 {
			o.m.recordsIn.WithLabelValues(lastTopic).Add(inCount)
		}
		o.st.In.Add(int64(len(recs)))
		if tx, ok := o.src.(Transactional); ok && len(recs) > 0 {
			if err := o.endTransaction(work, tx); err != nil {
				return err
			}
		}
		if err != nil || ctx.Err() != nil {
			return nil
		}
	}
}
