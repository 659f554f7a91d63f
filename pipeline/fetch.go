package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// fetchLoop is the only caller of Source.Fetch. Each fetch goes through the same steps, in
// order: register the records for commit tracking, decode them and extract their features
// (or dead-letter them), complete their window features, submit them to the batcher, and,
// on a transactional source, end the fetch's transaction.
func (o *Operator) fetchLoop(ctx, work context.Context) error {
	dec := NewDecoder(o.cfg.Schema)
	dec.SetContext(ctx)
	ev := dec.NewEvent()
	for {
		recs, err := o.src.Fetch(ctx)
		fetched := fetchTime{wall: time.Now()}
		fetched.mono = mono()
		handles := o.register(recs)
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
		// work, not ctx: a record already fetched is finished after a stop request.
		if err := o.process(work, dec, ev, recs, handles, fetched); err != nil {
			if IsUnavailable(err) && ctx.Err() != nil {
				// Stopped while waiting for the schema registry: the rest of the fetch
				// is left uncommitted, to be read again.
				return nil
			}
			return err
		}
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

// register begins commit tracking for the records of a fetch. It runs before a rebalance
// held back by this fetch may proceed, so that the revoke handler waits for them.
func (o *Operator) register(recs []Record) []handle {
	handles := make([]handle, len(recs))
	for i := range recs {
		r := &recs[i]
		handles[i] = o.tr.begin(TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset, r.LeaderEpoch, r.Timestamp)
	}
	if gs, ok := o.src.(GroupSource); ok {
		gs.AllowRebalance()
	}
	return handles
}

// fetchTime is when a Fetch returned: wall for the fetch stage (against the records' Kafka
// timestamps), mono for the stages after it.
type fetchTime struct {
	wall time.Time
	mono int64
}

// process turns the records of one fetch into batcher rows or dead letters, in order.
func (o *Operator) process(work context.Context, dec *Decoder, ev *Event, recs []Record, handles []handle, fetched fetchTime) error {
	// One slab for the fetch: a row's features stay alive until its outputs are acknowledged.
	slab := make([]float32, len(recs)*o.nFeat)
	nf := o.rt.nFields
	fslab := make([]float64, len(recs)*nf) // routing rules' event fields (routing.go); empty unless kept
	in := inCounter{m: o.m}
	sw := stageWatch{st: o.m.stages, ws: o.state, last: fetched.mono}
	sw.waited = o.state.feedbackWaited()
	for i := range recs {
		r := &recs[i]
		in.add(r.Topic)
		if o.cfg.MeasureLatency {
			o.m.stages.observe(StageFetch, int64(fetched.wall.Sub(r.Timestamp)))
		}
		feat := slab[i*o.nFeat : (i+1)*o.nFeat : (i+1)*o.nFeat]
		if err := decodeRecord(dec, o.cfg.Features, r, ev, feat); err != nil {
			if IsUnavailable(err) { // not a bad record: stop without committing it
				return fmt.Errorf("decoding %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			o.deadLetter(r, handles[i], err)
			continue
		}
		if err := o.submit(work, r, handles[i], ev, feat, fslab[i*nf:(i+1)*nf:(i+1)*nf], &sw, fetched.mono); err != nil {
			return err
		}
	}
	in.flush()
	o.st.In.Add(int64(len(recs)))
	return nil
}

// stageWatch splits the time from a fetch to each of its records' features being complete
// into the decode and feedback_wait stages (see Stage) with two clock reads per record.
type stageWatch struct {
	st       *stageTimes
	ws       *windowState
	last     int64 // mono at the end of the previous record's hand-off (the fetch, at first)
	waited   int64 // ws.feedbackWaited() at last
	decode   int64 // time in this fetch spent decoding, up to now
	feedback int64 // time in this fetch spent waiting for feedback, up to now
}

// ready is called when a record's features are complete: it observes the record's decode
// and feedback_wait stages and returns the moment its queue stage starts (relative to
// fetched, so that the time its predecessors spent handing off is not counted twice).
func (sw *stageWatch) ready(fetched int64) int64 {
	now := mono()
	w := sw.ws.feedbackWaited()
	fb := w - sw.waited
	sw.decode += now - sw.last - fb
	sw.feedback += fb
	sw.waited, sw.last = w, now
	sw.st.observe(StageDecode, sw.decode)
	sw.st.observe(StageFeedback, sw.feedback)
	return fetched + sw.decode + sw.feedback
}

// decodeRecord applies the schema and the stateless features to r. The fetch loop and the
// state rebuild both go through it, so that a rebuild leaves out exactly the records that
// were dead-lettered when first read.
func decodeRecord(dec *Decoder, fs *FeatureSpec, r *Record, ev *Event, feat []float32) error {
	if err := dec.CheckKey(r.Key); err != nil {
		return err
	}
	if err := dec.Decode(r.Value, r.Timestamp, ev); err != nil {
		return err
	}
	if err := dec.CheckKeyField(r.Key, ev); err != nil {
		return err
	}
	return fs.Extract(ev, feat)
}

// submit completes the features of a decoded record (the windows, which may wait for
// feedback) and hands it to the batcher.
func (o *Operator) submit(work context.Context, r *Record, h handle, ev *Event, feat []float32, fields []float64, sw *stageWatch, fetched int64) error {
	if o.state != nil {
		if err := o.state.features(work, r, ev, feat); err != nil {
			return err
		}
	}
	ready := sw.ready(fetched)
	err := o.batch.Submit(work, row{h: h, rec: r, eventTime: ev.Time, feat: feat, ready: ready, ev: o.rowEvent(ev, fields)})
	sw.last = mono() // a full queue's wait belongs to the queue stage, not to the next decode
	return err
}

// inCounter counts records_in per run of records from one topic: resolving the labelled
// counter once per run, not once per record, keeps the lookup off the per-record path.
type inCounter struct {
	m     *Metrics
	topic string
	n     float64
}

func (c *inCounter) add(topic string) {
	if topic != c.topic {
		c.flush()
		c.topic, c.n = topic, 0
	}
	c.n++
}

func (c *inCounter) flush() {
	if c.n > 0 {
		c.m.recordsIn.WithLabelValues(c.topic).Add(c.n)
	}
}
