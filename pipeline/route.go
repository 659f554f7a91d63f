package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

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
			o.vers.header(o.models.Choose().Live)[0],
		},
	}
	o.sink.Produce(out, func(err error) {
		if err != nil {
			o.writeFailed(out, r, err)
			return
		}
		o.m.deadLetters.WithLabelValues(string(class)).Inc()
		o.out[out.Topic].Inc()
		o.st.DeadLettered.Add(1)
		o.tr.release(h)
	})
	o.tr.release(h)
}

// flush scores one batch and routes every row; it runs on the batcher's goroutine. The
// model versions are chosen once for the whole batch, so a swap happens between batches.
func (o *Operator) flush(_ context.Context, b scorer.Batch[row]) error {
	n, f := len(b.Rows), o.nFeat
	o.growScratch(n)
	mat := o.mat[:n*f]
	for i := range b.Rows {
		copy(mat[i*f:(i+1)*f], b.Rows[i].feat)
	}
	start := time.Now()
	startMono := mono()
	o.m.queueWait.Observe(start.Sub(b.Oldest).Seconds())
	for i := range b.Rows {
		if r := &b.Rows[i]; r.ready != 0 {
			o.m.stages.observe(StageQueue, startMono-r.ready)
		}
	}
	choice := o.models.Choose()
	o.runs = choice.runs(b.Rows, o.runs)
	o.rt.ann.reset(n)
	for _, r := range o.runs {
		var err error
		o.raw, err = r.m.Score(mat[r.start*f:r.end*f], r.end-r.start, o.scores[r.start:r.end], o.raw)
		if err != nil {
			return fmt.Errorf("scoring a batch of %d with %s %s: %w", r.end-r.start, r.m.Name(), r.m.Version(), err)
		}
		o.rt.ann.collect(r.m, r.start, r.end)
	}
	shadow := o.scoreShadow(choice, b.Rows, mat)
	o.observeBatch(start, n, b.Reason)
	o.route(b.Rows, choice, shadow, batchTimes{start: startMono, scored: mono()})
	return nil
}

// scoreShadow scores the batch's shadow predictions (the shadow version, or each row's
// other experiment arm) into o.shadow and notes each row's shadow scorer in
// o.rt.shadowBy; nil when nothing is shadowed. A shadow is a trial: its failure is
// logged and the batch is not shadowed, live scoring goes on.
func (o *Operator) scoreShadow(choice ModelChoice, rows []row, mat []float32) []float32 {
	runs := o.shadowRuns(choice, rows)
	if len(runs) == 0 {
		return nil
	}
	n, f := len(rows), o.nFeat
	o.rt.shadowAnn.reset(n)
	if cap(o.rt.shadowBy) < n {
		o.rt.shadowBy = make([]Scorer, n)
	}
	o.rt.shadowBy = o.rt.shadowBy[:n]
	for _, r := range runs {
		for i := r.start; i < r.end; i++ {
			o.rt.shadowBy[i] = r.m
		}
		if r.m == nil {
			continue
		}
		var err error
		if o.raw, err = r.m.Score(mat[r.start*f:r.end*f], r.end-r.start, o.shadow[r.start:r.end], o.raw); err != nil {
			o.log.Warn("shadow model failed; batch not shadowed", zap.String("version", r.m.Version()), zap.Error(err))
			return nil
		}
		o.rt.shadowAnn.collect(r.m, r.start, r.end)
	}
	return o.shadow[:n]
}

// growScratch makes the batcher goroutine's buffers hold n rows.
func (o *Operator) growScratch(n int) {
	if cap(o.scores) >= n {
		return
	}
	size := max(n, o.batch.Config().MaxSize)
	o.mat = make([]float32, size*o.nFeat)
	o.scores = make([]float32, size)
	o.shadow = make([]float32, size)
}

func (o *Operator) observeBatch(start time.Time, n int, reason scorer.FlushReason) {
	o.m.inference.Observe(time.Since(start).Seconds())
	o.m.batchSize.Observe(float64(n))
	o.m.batches.WithLabelValues(reason.String()).Inc()
	if o.st.Batches.Add(1)%64 == 1 {
		perRow, perCall, _ := o.batch.CostModel()
		o.m.costPerRow.Set(perRow.Seconds())
		o.m.costPerCall.Set(perCall.Seconds())
		o.m.arrivalRate.Set(o.batch.ArrivalRate())
	}
	o.st.Rows.Add(int64(n))
}

// route writes each row's prediction, its alert when the score crosses the threshold, a
// switch marker when its partition's version changed, and its shadow prediction.
// batchTimes are when a batch's scoring started and ended (mono): each row's score stage
// lies between them, and its produce stage runs from the end until its outputs are handed
// to the sink.
type batchTimes struct{ start, scored int64 }

// routed is the state of one batch's routing: what every row shares, and the batch's
// buffers for the values and the outputs in flight.
type routed struct {
	choice ModelChoice
	shadow []float32
	now    time.Time
	bt     batchTimes
	vals   []byte
	sends  []sent
	// the encoder and header of the run being routed: resolved once per run, as
	// versions' lookups build a key
	enc *predictionEncoder
	hdr []Header
}

func (o *Operator) route(rows []row, choice ModelChoice, shadow []float32, bt batchTimes) {
	// One allocation per batch for the values and one for the outputs in flight, not one
	// each per output: they stay alive until the last of the batch's outputs is
	// acknowledged. sends is sized exactly (countOutputs), as its elements' addresses go
	// to the sink and must not move.
	perRow := 192 + len(o.cfg.Topics.Predictions)
	if o.cfg.IncludeFeatures {
		perRow += 12 * o.nFeat
	}
	// What the last batch took, with a margin: reasons, annotations and ids make the
	// estimate short, and a buffer outgrown mid-batch is copied, the copy kept as well.
	perRow = max(perRow, o.rt.valBytes+o.rt.valBytes/8)
	nVals := len(rows)
	if shadow != nil {
		nVals += len(rows)
	}
	b := routed{
		choice: choice, shadow: shadow, now: o.cfg.Now(), bt: bt,
		vals:  make([]byte, 0, nVals*perRow),
		sends: make([]sent, 0, o.countOutputs(rows, shadow)),
	}
	for _, rn := range o.runs {
		b.enc, b.hdr = o.vers.encoder(rn.m), o.vers.header(rn.m)
		for i := rn.start; i < rn.end; i++ {
			if r := &rows[i]; r.req != nil {
				r.req.answer(r.idx, o.scores[i], rn.m) // no record, no outputs
			} else {
				o.routeRow(&b, i, r, rn.m)
			}
		}
	}
	o.rt.valBytes = len(b.vals) / max(nVals, 1)
}

// countOutputs is how many predictions, alerts and shadow predictions route writes for
// rows (switch markers and drift records, which are rare, are allocated apart).
func (o *Operator) countOutputs(rows []row, shadow []float32) int {
	n := 0
	for i := range rows {
		if rows[i].req != nil {
			continue
		}
		n++
		if o.alerts(o.scores[i]) {
			n++
		}
		if o.shadowOf(i, shadow) != nil {
			n++
		}
	}
	return n
}

// alerts says whether a score raises an alert.
func (o *Operator) alerts(score float32) bool {
	return o.cfg.Topics.Alerts != "" && score >= o.cfg.Threshold
}

// shadowOf is the scorer of row i's shadow prediction; nil: none.
func (o *Operator) shadowOf(i int, shadow []float32) Scorer {
	if shadow == nil {
		return nil
	}
	return o.rt.shadowBy[i]
}

// routeRow writes the outputs of row i, scored by m. It takes a reference on the row's
// handle per output before producing any, and releases the row's own once all are handed
// to the sink.
func (o *Operator) routeRow(b *routed, i int, r *row, m Scorer) {
	o.m.stages.observe(StageScore, b.bt.scored-b.bt.start)
	rec := r.rec
	score := o.scores[i]
	var feat []float32
	if o.cfg.IncludeFeatures {
		feat = r.feat
	}
	hdr := b.hdr
	start := len(b.vals)
	b.vals = b.enc.append(b.vals, rec.Topic, rec.Partition, rec.Offset, rec.Key, r.ev.id, score, r.eventTime, b.now, feat, o.rt.ann.of(i))
	if o.explains(score, rec) {
		b.vals = o.appendReasons(b.vals, m, r.feat)
	}
	val := b.vals[start:len(b.vals):len(b.vals)]
	alert := o.alerts(score)
	mark := o.marker(rec, b.choice, m)
	shadowM := o.shadowOf(i, b.shadow)
	count := int32(1)
	if alert {
		count++
	}
	if mark != nil {
		count++
	}
	if shadowM != nil {
		count++
	}
	var drifts []*Output
	if o.drift != nil {
		drifts = o.drift.observe(rec, m, r.eventTime, r.feat, score)
		count += int32(len(drifts))
	}
	o.tr.add(r.h, count)
	o.produce(b.next(), Output{Topic: o.cfg.Topics.Predictions, Key: rec.Key, Value: val, Headers: hdr, Source: rec, Features: r.feat, EventTime: r.eventTime}, rec, r.h, &o.st.Predictions)
	if alert {
		o.produce(b.next(), Output{Topic: o.cfg.Topics.Alerts, Key: rec.Key, Value: val, Headers: hdr, Source: rec, Features: r.feat, EventTime: r.eventTime}, rec, r.h, &o.st.Alerts)
	}
	if mark != nil {
		o.produce(&sent{}, *mark, rec, r.h, &o.st.Marks)
	}
	for _, d := range drifts {
		// A drift record has no Source: the window it closes spans many records. rec,
		// which closed it, is the one whose offset it holds back.
		o.produce(&sent{}, *d, rec, r.h, &o.st.Drift)
	}
	if shadowM != nil {
		o.routeShadow(b, i, r, shadowM, score, feat)
	}
	handed := mono()
	o.m.stages.observe(StageProduce, handed-b.bt.scored)
	o.tr.releaseHanded(r.h, handed)
}

// routeShadow writes row i's shadow prediction by m and observes how it differs from the
// live score.
func (o *Operator) routeShadow(b *routed, i int, r *row, m Scorer, score float32, feat []float32) {
	rec, shadow := r.rec, b.shadow[i]
	start := len(b.vals)
	b.vals = o.vers.encoder(m).append(b.vals, rec.Topic, rec.Partition, rec.Offset, rec.Key, r.ev.id, shadow, r.eventTime, b.now, feat, o.rt.shadowAnn.of(i))
	val := b.vals[start:len(b.vals):len(b.vals)]
	o.produce(b.next(), Output{Topic: o.cfg.Topics.Shadow, Key: rec.Key, Value: val, Headers: o.vers.header(m), Source: rec, Features: r.feat, EventTime: r.eventTime}, rec, r.h, &o.st.Shadow)
	o.m.shadowDiff.Observe(scoreDiff(score, shadow))
	if (score >= o.cfg.Threshold) != (shadow >= o.cfg.Threshold) {
		o.m.shadowAlertFlips.Inc()
	}
}

// next is the batch's next output in flight. sends never grows: past the count route
// sized it for (which it does not expect), an output gets its own allocation.
func (b *routed) next() *sent {
	if len(b.sends) == cap(b.sends) {
		return &sent{}
	}
	b.sends = b.sends[:len(b.sends)+1]
	return &b.sends[len(b.sends)-1]
}

// marker is the switch marker of rec when the routing (or, without one, the version m)
// is not the one that last scored its partition here; nil otherwise, or when markers are
// off.
func (o *Operator) marker(rec *Record, c ModelChoice, m Scorer) *Output {
	if o.cfg.Marks == nil || !o.partVer.changed(TopicPartition{Topic: rec.Topic, Partition: rec.Partition}, c.markID(m)) {
		return nil
	}
	var spec []byte
	if c.Route != nil {
		m, spec = c.Live, c.Route.Spec
	}
	key, val, err := o.cfg.Marks.Encode(rec.Topic, rec.Partition, rec.Offset, m.Name(), m.Version(), spec)
	if err != nil {
		// The encoder only marshals strings and numbers; this is a programming error.
		o.fail(fmt.Errorf("encoding the switch marker of %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err))
		return nil
	}
	return &Output{Topic: o.cfg.Marks.Topic, Key: key, Value: val, Source: rec}
}

// sent is one output in flight and what its acknowledgement does. The operator hands it
// to the sink as the output's Acker (or its Ack method as the ack func, to a sink without
// ProduceAck): with route's slab of them, an output costs no allocation of its own.
type sent struct {
	out     Output
	o       *Operator
	src     *Record // the input record; not out.Source, which a drift record lacks
	h       handle
	counter interface{ Add(int64) int64 }
}

// Ack implements Acker: it counts the output and releases one reference to its input
// record's handle; a failure stops the operator (writeFailed).
func (s *sent) Ack(err error) {
	if err != nil {
		s.o.writeFailed(&s.out, s.src, err)
		return
	}
	s.o.out[s.out.Topic].Inc()
	s.counter.Add(1)
	s.o.tr.release(s.h)
}

// produce sends out, an output of the input record src (a prediction, alert, shadow
// prediction, switch marker or drift record), through s; its acknowledgement releases one
// reference to src's handle h, and a failure stops the operator. src is passed apart from
// the output because not every output has a Source (a drift record does not), and the
// error path must name the input record whatever the output.
func (o *Operator) produce(s *sent, out Output, src *Record, h handle, counter interface{ Add(int64) int64 }) {
	*s = sent{out: out, o: o, src: src, h: h, counter: counter}
	if o.acks != nil {
		o.acks.ProduceAck(&s.out, s)
		return
	}
	o.sink.Produce(&s.out, s.Ack)
}

// ProduceAcked hands out to sink with a as its acknowledgement: through ProduceAck when
// the sink has it, through Produce with a.Ack (a closure) otherwise. A sink that wraps
// another calls it from its own ProduceAck to keep the inner sink's allocation-free path.
func ProduceAcked(sink Sink, out *Output, a Acker) {
	if ap, ok := sink.(AckProducer); ok {
		ap.ProduceAck(out, a)
		return
	}
	sink.Produce(out, a.Ack)
}

// writeFailed stops the operator on an output that was not written: the reference it
// held on its input record is never released, so no commit passes that record, and the
// driver can restart from the last commit without losing it. It counts the failure by
// class and logs the first one (a broker that goes away fails every output in flight:
// one line says it). It may run on any goroutine, after Run returned included, and reads
// only fields every output has: src, not out.Source, names the input record.
func (o *Operator) writeFailed(out *Output, src *Record, err error) {
	class := record.WriteClass(err)
	o.m.writeErrors.WithLabelValues(out.Topic, class).Inc()
	at := "an input record not known"
	if src != nil {
		at = src.Topic + "/" + strconv.FormatInt(int64(src.Partition), 10) + "@" + strconv.FormatInt(src.Offset, 10)
	}
	werr := fmt.Errorf("writing to %s for %s: %w", out.Topic, at, err)
	o.logWriteOnce.Do(func() {
		if class == "transient" {
			o.log.Warn("output not written; stopping at the last commit, nothing past it is committed",
				zap.String("topic", out.Topic), zap.String("input", at), zap.String("class", class), zap.Error(err))
			return
		}
		var fix string
		if we, ok := errors.AsType[*record.WriteError](err); ok {
			fix = we.Fix
		}
		o.log.Error("output not written, and waiting will not help; stopping at the last commit",
			zap.String("topic", out.Topic), zap.String("input", at), zap.String("class", class),
			zap.String("fix", fix), zap.Error(err))
	})
	o.fail(werr)
}
