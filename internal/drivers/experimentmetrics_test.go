package drivers

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
)

// labelsOnce is a feedback source that returns its records once, then again after a
// rewind (as the feedback table rereads the topic after a restart).
type labelsOnce struct {
	recs []pipeline.Record
	done bool
}

func (l *labelsOnce) Partitions() []int32 { return []int32{0} }
func (l *labelsOnce) Poll(context.Context) (pipeline.FeedbackPoll, error) {
	if l.done {
		return pipeline.FeedbackPoll{}, nil
	}
	l.done = true
	return pipeline.FeedbackPoll{Records: l.recs}, nil
}
func (l *labelsOnce) CaughtUp(context.Context) (map[int32]bool, error) { return nil, nil }
func (l *labelsOnce) Rewind(context.Context) error                     { l.done = false; return nil }

func TestArmMetricsCountLabelsJoinedOnce(t *testing.T) {
	c, err := testConfig(t, []string{"127.0.0.1:1"}).Validate(config.Needs{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := newArmMetrics(reg, c)
	m.capacity = 3
	sink := m.sink(pipeline.DiscardSink{})
	pred := func(id int, arm string, score float64) {
		v := fmt.Appendf(nil, `{"source":{"topic":"tx","partition":0,"offset":%d},"key":"1","id":%d,"score":%v,"model":{"name":"fraud","version":"v-%s"},"experiment":{"name":"exp","arm":%q}}`, id, id, score, arm, arm)
		sink.Produce(&pipeline.Output{Topic: c.Topics.Predictions, Value: v}, func(err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	pred(1, "control", 0.9)                                                                                            // tp
	pred(2, "control", 0.9)                                                                                            // fp
	pred(3, "treatment", 0.1)                                                                                          // fn
	pred(4, "treatment", 0.1)                                                                                          // tn, and 1 is forgotten (capacity 3)
	sink.Produce(&pipeline.Output{Topic: c.Topics.Predictions, Value: []byte(`{"id":9,"score":0.9}`)}, func(error) {}) // no experiment
	label := func(id, y int) pipeline.Record {
		return pipeline.Record{Value: fmt.Appendf(nil, `{"transaction_id":%d,"tx_datetime":"2018-08-08T00:00:00Z","terminal_id":1,"tx_fraud":%d}`, id, y)}
	}
	fb := m.feedbackSource(&labelsOnce{recs: []pipeline.Record{label(1, 1), label(2, 0), label(3, 1), label(4, 0), label(5, 1)}})
	for range 2 { // the second pass is a reread after a rewind: nothing counts twice
		if _, err := fb.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := fb.Rewind(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.events.WithLabelValues("exp", "control", "v-control")), 2, "control events"},
		{testutil.ToFloat64(m.alerts.WithLabelValues("exp", "control", "v-control")), 2, "control alerts"},
		{testutil.ToFloat64(m.alerts.WithLabelValues("exp", "treatment", "v-treatment")), 0, "treatment alerts"},
		{testutil.ToFloat64(m.labelled.WithLabelValues("exp", "control", "v-control", "tp")), 0, "tp of a forgotten prediction"},
		{testutil.ToFloat64(m.labelled.WithLabelValues("exp", "control", "v-control", "fp")), 1, "fp"},
		{testutil.ToFloat64(m.labelled.WithLabelValues("exp", "treatment", "v-treatment", "fn")), 1, "fn"},
		{testutil.ToFloat64(m.labelled.WithLabelValues("exp", "treatment", "v-treatment", "tn")), 1, "tn"},
		{testutil.ToFloat64(m.forgotten), 1, "forgotten"},
		{testutil.ToFloat64(m.remembered), 0, "remembered"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}

// BenchmarkArmSink is the live metrics' cost per acknowledged prediction: one outside any
// experiment (a byte scan), one routed by an experiment (decoded and remembered).
func BenchmarkArmSink(b *testing.B) {
	c, err := testConfig(b, []string{"127.0.0.1:1"}).Validate(config.Needs{})
	if err != nil {
		b.Fatal(err)
	}
	plain := []byte(`{"source":{"topic":"transactions","partition":3,"offset":1234},"key":"596","id":1234,"score":0.0132,"model":{"name":"fraud","version":"3f2a9c1e"},"event_time":"2018-04-01T00:07:56Z","scored_at":"2026-11-22T08:00:00.123456Z"}`)
	routed := []byte(`{"source":{"topic":"transactions","partition":3,"offset":1234},"key":"596","id":1234,"score":0.0132,"model":{"name":"fraud","version":"3f2a9c1e"},"experiment":{"name":"exp","arm":"treatment"},"event_time":"2018-04-01T00:07:56Z","scored_at":"2026-11-22T08:00:00.123456Z"}`)
	for name, v := range map[string][]byte{"outside": plain, "routed": routed} {
		b.Run(name, func(b *testing.B) {
			sink := newArmMetrics(prometheus.NewRegistry(), c).sink(pipeline.DiscardSink{})
			out := &pipeline.Output{Topic: c.Topics.Predictions, Value: v}
			ack := func(error) {}
			b.ReportAllocs()
			for b.Loop() {
				sink.Produce(out, ack)
			}
		})
	}
}
