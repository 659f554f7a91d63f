package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
)

// deadLetter sends r, as it came, to the dead-letter topic with headers saying why. Like
// any output it holds r's offset back from commits until it is acknowledged.
func (o *Operator) deadLetter(r *Record, h handle, cause error) {
	var de *DecodeError
	class := ClassInvalidJSON
	if errors.As(cause, &de) {
		class = de.Class
	}
	o.tr.add(h, 1)
	out := &Output{
		Topic: o.cfg.Topics.DeadLetter, Key: r.Key, Value: r.Value, Source: r,
		Headers: []Header{
			{Key: record.HeaderErrorClass, Value: []byte(class)},
			{Key: record.HeaderErrorMessage, Value: []byte(cause.Error())},
			{Key: record.HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: record.HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
			{Key: record.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		},
	}
	o.sink.Produce(out, func(err error) {
		if err != nil {
			o.fail(fmt.Errorf("writing dead letter for %s/%d@%d to %s: %w", r.Topic, r.Partition, r.Offset, out.Topic, err))
			return
		}
		o.m.deadLetters.WithLabelValues(string(class)).Inc()
		o.out[out.Topic].Inc()
		o.st.DeadLettered.Add(1)
		o.tr.release(h)
	})
	o.tr.release(h)
}

// flush scores one batch and routes every row; it runs on the batcher's goroutine.
func (o *Operator) flush(ctx context.Context, b scorer.Batch[row]) error {
	n, f := len(b.Rows), o.nFeat
	if cap(o.mat) < n*f {
		o.mat = make([]float32, n*f, o.batch.Config().MaxSize*f)
		o.scores = make([]float32, o.batch.Config().MaxSize)
	}
	mat := o.mat[:n*f]
	for i := range b.Rows {
		copy(mat[i*f:(i+1)*f], b.Rows[i].feat)
	}
	start := time.Now()
	o.m.queueWait.Observe(start.Sub(b.Oldest).Seconds())
	var err error
	o.raw, err = o.cfg.Model.Score(mat, n, o.scores, o.raw)
	if err != nil {
		return fmt.Errorf("scoring a batch of %d: %w", n, err)
	}
	o.m.inference.Observe(time.Since(start).Seconds())
	o.m.batchSize.Observe(float64(n))
	o.m.batches.WithLabelValues(b.Reason.String()).Inc()
	if o.st.Batches.Add(1)%64 == 1 {
		perRow, perCall, _ := o.batch.CostModel()
		o.m.costPerRow.Set(perRow.Seconds())
		o.m.costPerCall.Set(perCall.Seconds())
		o.m.arrivalRate.Set(o.batch.ArrivalRate())
	}
	o.st.Rows.Add(int64(n))

	now := o.cfg.Now()
	// One allocation per batch for the values and one for the prediction outputs, not one
	// each per row: they stay alive until the last of the batch's records is acknowledged.
	perRow := 192 + len(o.cfg.Topics.Predictions)
	if o.cfg.IncludeFeatures {
		perRow += 12 * f
	}
	vals := make([]byte, 0, n*perRow)
	outs := make([]Output, n)
	for i := range b.Rows {
		r := &b.Rows[i]
		rec := r.rec
		score := o.scores[i]
		var feat []float32
		if o.cfg.IncludeFeatures {
			feat = r.feat
		}
		start := len(vals)
		vals = o.enc.append(vals, rec.Topic, rec.Partition, rec.Offset, rec.Key, score, r.eventTime, now, feat)
		val := vals[start:len(vals):len(vals)]
		alert := o.cfg.Topics.Alerts != "" && score >= o.cfg.Threshold
		count := int32(1)
		if alert {
			count++
		}
		o.tr.add(r.h, count)
		outs[i] = Output{Topic: o.cfg.Topics.Predictions, Key: rec.Key, Value: val, Source: rec, Features: r.feat, EventTime: r.eventTime}
		o.produce(&outs[i], r.h, &o.st.Predictions)
		if alert {
			o.produce(&Output{Topic: o.cfg.Topics.Alerts, Key: rec.Key, Value: val, Source: rec, Features: r.feat, EventTime: r.eventTime}, r.h, &o.st.Alerts)
		}
		o.tr.release(r.h)
	}
	return nil
}

// produce sends a prediction or an alert; its acknowledgement releases one reference to
// the record h, and a failure stops the operator.
func (o *Operator) produce(out *Output, h handle, counter interface{ Add(int64) int64 }) {
	o.sink.Produce(out, func(err error) {
		if err != nil {
			o.fail(fmt.Errorf("writing to %s for %s/%d@%d: %w", out.Topic, out.Source.Topic, out.Source.Partition, out.Source.Offset, err))
			return
		}
		o.out[out.Topic].Inc()
		counter.Add(1)
		o.tr.release(h)
	})
}
