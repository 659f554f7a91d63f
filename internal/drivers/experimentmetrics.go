package drivers

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
)

// maxRemembered bounds the experiment predictions an instance remembers while it waits
// for their labels (about 40 MB at most): a label that arrives after its prediction was
// forgotten is not counted live (streamscore_experiment_forgotten_total counts those
// forgotten unlabelled); `streamscore experiment report` is exact whatever the delay.
const maxRemembered = 1 << 21

// armMetrics exports an experiment's per-arm counts live (docs/experiments.md): events
// and alerts of the predictions this instance wrote (counted on their acknowledgement),
// and labelled events by outcome at the threshold (tp, fp, fn, tn) when a label read by
// the feedback table joins a prediction this instance remembers. Each prediction joins
// one label at most, so the feedback table's rereads (a rewind, a restart) count nothing
// twice. It is observed through wrappers of the operator's sink and feedback source, so
// the operator knows nothing of it. Safe for concurrent use.
type armMetrics struct {
	predictions string
	threshold   float64
	capacity    int // maxRemembered; smaller in tests
	feedback    pipeline.FeedbackConfig

	events, alerts, labelled *prometheus.CounterVec
	forgotten                prometheus.Counter
	remembered               prometheus.Gauge

	mu     sync.Mutex
	series map[[3]string]uint32 // (experiment, arm, version) → index into keys
	keys   [][3]string
	byID   map[int64]uint32 // event id → series index << 1 | alert
	ring   []int64          // ids in the order they were remembered, for forgetting
	next   int
}

func newArmMetrics(reg prometheus.Registerer, c *config.Compiled) *armMetrics {
	labels := []string{"experiment", "arm", "version"}
	m := &armMetrics{
		predictions: c.Topics.Predictions, threshold: c.Threshold, feedback: c.Feedback,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "streamscore_experiment_events_total",
			Help: "Predictions of an experiment this instance wrote, by arm and model version."}, labels),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "streamscore_experiment_alerts_total",
			Help: "Predictions of an experiment at or above the threshold, by arm and model version."}, labels),
		labelled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "streamscore_experiment_labelled_total",
			Help: "Labels joined to a remembered prediction of an experiment, by arm, version and outcome at the threshold (tp, fp, fn, tn)."},
			append(labels, "outcome")),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{Name: "streamscore_experiment_forgotten_total",
			Help: "Experiment predictions forgotten before their label arrived (the memory bound); the report still counts them."}),
		remembered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "streamscore_experiment_remembered",
			Help: "Experiment predictions remembered, waiting for their label."}),
		series: map[[3]string]uint32{}, byID: map[int64]uint32{}, capacity: maxRemembered,
	}
	reg.MustRegister(m.events, m.alerts, m.labelled, m.forgotten, m.remembered)
	return m
}

// observed is the part of a prediction the metrics read.
type observed struct {
	ID         json.RawMessage `json:"id"`
	Score      float64         `json:"score"`
	Model      struct{ Version string }
	Experiment *struct{ Name, Arm string }
}

var experimentField = []byte(`"experiment":`)

// scored counts a prediction that was acknowledged.
func (m *armMetrics) scored(value []byte) {
	var p observed
	if json.Unmarshal(value, &p) != nil || p.Experiment == nil {
		return
	}
	alert := p.Score >= m.threshold
	key := [3]string{p.Experiment.Name, p.Experiment.Arm, p.Model.Version}
	m.events.WithLabelValues(key[:]...).Inc()
	if alert {
		m.alerts.WithLabelValues(key[:]...).Inc()
	}
	id, err := strconv.ParseInt(string(bytes.Trim(p.ID, `"`)), 10, 64)
	if err != nil {
		return // no event id: it can never be labelled
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.series[key]
	if !ok {
		s = uint32(len(m.keys))
		m.series[key] = s
		m.keys = append(m.keys, key)
	}
	v := s << 1
	if alert {
		v |= 1
	}
	m.remember(id, v)
}

// remember stores id, forgetting the oldest remembered id once capacity are kept.
// Called with mu held.
func (m *armMetrics) remember(id int64, v uint32) {
	if _, again := m.byID[id]; !again {
		if len(m.ring) < m.capacity {
			m.ring = append(m.ring, id)
		} else {
			if _, waiting := m.byID[m.ring[m.next]]; waiting {
				delete(m.byID, m.ring[m.next])
				m.forgotten.Inc()
			}
			m.ring[m.next] = id
			m.next = (m.next + 1) % m.capacity
		}
	}
	m.byID[id] = v
	m.remembered.Set(float64(len(m.byID)))
}

// labelledAs counts the label of event id, if its prediction is remembered, and forgets it.
func (m *armMetrics) labelledAs(id int64, fraud bool) {
	m.mu.Lock()
	v, ok := m.byID[id]
	if ok {
		delete(m.byID, id)
		m.remembered.Set(float64(len(m.byID)))
	}
	m.mu.Unlock()
	if !ok {
		return
	}
	alert := v&1 == 1
	outcome := "tn"
	switch {
	case alert && fraud:
		outcome = "tp"
	case alert:
		outcome = "fp"
	case fraud:
		outcome = "fn"
	}
	k := m.keys[v>>1]
	m.labelled.WithLabelValues(k[0], k[1], k[2], outcome).Inc()
}

// waiting says whether any prediction waits for its label.
func (m *armMetrics) waiting() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID) > 0
}

// sink wraps an operator's sink: predictions are counted when acknowledged.
func (m *armMetrics) sink(s pipeline.Sink) pipeline.Sink { return &armSink{Sink: s, m: m} }

type armSink struct {
	pipeline.Sink
	m *armMetrics
}

func (s *armSink) Produce(out *pipeline.Output, ack func(error)) {
	if out.Topic != s.m.predictions || !bytes.Contains(out.Value, experimentField) {
		s.Sink.Produce(out, ack) // not routed by an experiment: the common case costs a scan
		return
	}
	value := out.Value // valid until acknowledged
	s.Sink.Produce(out, func(err error) {
		if err == nil {
			s.m.scored(value)
		}
		ack(err)
	})
}

// ProduceAck implements pipeline.AckProducer: an output that no experiment routed (the
// common case) keeps the inner sink's allocation-free path; a counted one takes Produce's.
func (s *armSink) ProduceAck(out *pipeline.Output, a pipeline.Acker) {
	if out.Topic != s.m.predictions || !bytes.Contains(out.Value, experimentField) {
		pipeline.ProduceAcked(s.Sink, out, a)
		return
	}
	s.Produce(out, a.Ack)
}

// feedbackSource wraps the feedback table's source: each label read joins a remembered
// prediction. Labels that do not decode are the table's business, not counted here.
func (m *armMetrics) feedbackSource(src pipeline.FeedbackSource) pipeline.FeedbackSource {
	fb := m.feedback
	if fb.Compile() != nil {
		return src
	}
	idI, labI := fb.FieldIndex(fb.IDField), fb.FieldIndex(fb.LabelField)
	if idI < 0 || labI < 0 {
		return src
	}
	dec := pipeline.NewDecoder(&fb.Schema)
	return &armFeedback{FeedbackSource: src, m: m, dec: dec, ev: dec.NewEvent(), idI: idI, labI: labI}
}

// armFeedback is not safe for concurrent use, like the source it wraps.
type armFeedback struct {
	pipeline.FeedbackSource
	m         *armMetrics
	dec       *pipeline.Decoder
	ev        *pipeline.Event
	idI, labI int
}

func (f *armFeedback) Poll(ctx context.Context) (pipeline.FeedbackPoll, error) {
	poll, err := f.FeedbackSource.Poll(ctx)
	if !f.m.waiting() {
		return poll, err // no experiment prediction remembered: labels cost nothing here
	}
	for i := range poll.Records {
		if f.dec.Decode(poll.Records[i].Value, poll.Records[i].Timestamp, f.ev) == nil && f.ev.Has(f.idI) && f.ev.Has(f.labI) {
			f.m.labelledAs(f.ev.Int[f.idI], f.ev.Num[f.labI] == 1)
		}
	}
	return poll, err
}
