package pipeline

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the operator's Prometheus collectors. They are registered on the registry
// the caller passes in, never on the global one.
type Metrics struct {
	recordsIn   *prometheus.CounterVec
	recordsOut  *prometheus.CounterVec
	writeErrors *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	batchSize   prometheus.Histogram
	batches     *prometheus.CounterVec
	queueWait   prometheus.Histogram
	inference   prometheus.Histogram
	latency     prometheus.Histogram

	stateRebuilds       prometheus.Counter
	stateRebuildSeconds prometheus.Counter
	stateEntities       prometheus.Gauge
	feedbackRecords     prometheus.Counter
	feedbackRejected    *prometheus.CounterVec
	feedbackLate        prometheus.Counter
	feedbackIdle        prometheus.Counter
	feedbackReloads     prometheus.Counter
	feedbackEntities    prometheus.Gauge
	feedbackWait        prometheus.Histogram
	tables              *tableMetricVecs

	costPerRow  prometheus.Gauge
	costPerCall prometheus.Gauge
	arrivalRate prometheus.Gauge

	shadowDiff       prometheus.Histogram
	shadowAlertFlips prometheus.Counter

	drift *driftMetrics

	stages *stageTimes // streamscore_stage_seconds
}

// NewMetrics creates the collectors and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_records_in_total", Help: "Input records fetched, by topic.",
		}, []string{"topic"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_records_out_total", Help: "Output records acknowledged by the sink, by topic.",
		}, []string{"topic"}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_output_write_errors_total",
			Help: "Outputs the sink failed to write, by topic and class: transient (Kafka recovers; the operator stops and restarts from the last commit) or permanent (a setting must change: see the error log's fix).",
		}, []string{"topic", "class"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_dead_letters_total", Help: "Input records dead-lettered, by error class.",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamscore_batch_size", Help: "Rows per ONNX Runtime call.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_batches_total", Help: "Batches scored, by the reason the batcher flushed them.",
		}, []string{"reason"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamscore_queue_wait_seconds", Help: "Time the first row of a batch waited in the batcher.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}),
		inference: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamscore_inference_seconds", Help: "Duration of one ONNX Runtime call.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamscore_event_to_prediction_seconds", Help: "From the input record's Kafka timestamp to the acknowledgement of its last output.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 20),
		}),
		stateRebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamscore_window_state_rebuilds_total", Help: "Input partitions whose window state was rebuilt from the log.",
		}),
		stateRebuildSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamscore_window_state_rebuild_seconds_total", Help: "Time spent rebuilding window state from the log.",
		}),
		stateEntities: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamscore_window_state_entities", Help: "Entities (keys) held in event-window state, summed over partitions at the last sweep.",
		}),
		feedbackRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamscore_feedback_records_total", Help: "Feedback records read into the feedback table.",
		}),
		feedbackRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamscore_feedback_rejected_total", Help: "Feedback records skipped because they do not decode, by error class.",
		}, []string{"reason"}),
		feedbackLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamscore_feedback_out_of_order_total", Help: "Feedback records older than an earlier record of their partition: events may have been scored without them.",
		}),
		feedbackIdle: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamscore_feedback_idle_partitions_total", Help: "Times a caught-up, silent feedback partition stopped holding events back.",
		}),
		feedbackReloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamscore_feedback_reloads_total", Help: "Times the feedback table was read again from the start (an event older than the table's retention).",
		}),
		feedbackEntities: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamscore_feedback_entities", Help: "Entities held in the feedback table at the last sweep.",
		}),
		feedbackWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamscore_feedback_wait_seconds", Help: "Time an event waited for the feedback it joins (only waits are observed).",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 12),
		}),
		costPerRow: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamscore_batch_cost_per_row_seconds", Help: "The micro-batcher's fitted scoring cost per row (a in a·n+b).",
		}),
		costPerCall: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamscore_batch_cost_per_call_seconds", Help: "The micro-batcher's fitted fixed cost per scoring call (b in a·n+b).",
		}),
		arrivalRate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamscore_batch_arrival_rows_per_second", Help: "Rows arriving at the micro-batcher while it scores, as it estimates them.",
		}),
		shadowDiff: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamscore_shadow_score_abs_diff", Help: "|live score − shadow score| of each shadowed event (0: bit-identical).",
			Buckets: []float64{0, 1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1},
		}),
		shadowAlertFlips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamscore_shadow_alert_disagreements_total", Help: "Shadowed events on which live and shadow disagree about the alert (one above the threshold, the other not).",
		}),
	}
	m.drift = newDriftMetrics(reg)
	m.tables = newTableMetricVecs(reg)
	m.stages = newStageTimes()
	if reg != nil {
		reg.MustRegister(m.stages)
		reg.MustRegister(m.costPerRow, m.costPerCall, m.arrivalRate, m.shadowDiff, m.shadowAlertFlips)
		reg.MustRegister(m.recordsIn, m.recordsOut, m.writeErrors, m.deadLetters, m.batchSize, m.batches, m.queueWait, m.inference, m.latency,
			m.stateRebuilds, m.stateRebuildSeconds, m.stateEntities, m.feedbackRecords, m.feedbackRejected, m.feedbackLate,
			m.feedbackIdle, m.feedbackReloads, m.feedbackEntities, m.feedbackWait)
	}
	return m
}

// Stats are the operator's running totals, readable at any time from any goroutine.
type Stats struct {
	In           atomic.Int64 // input records fetched
	Predictions  atomic.Int64 // predictions acknowledged
	Alerts       atomic.Int64 // alerts acknowledged
	DeadLettered atomic.Int64 // dead letters acknowledged
	Done         atomic.Int64 // input records whose every output is acknowledged
	Batches      atomic.Int64
	Rows         atomic.Int64 // rows scored
	Shadow       atomic.Int64 // shadow predictions acknowledged
	Marks        atomic.Int64 // switch markers acknowledged
	Drift        atomic.Int64 // drift records acknowledged
	Transactions atomic.Int64 // exactly-once: transactions committed
	Aborted      atomic.Int64 // exactly-once: transactions aborted (their records are fetched again)
	Latency      LatencySketch
}

// LatencySketch is a fixed-size log-bucketed histogram of durations (about 2% relative
// error) for percentiles in summaries. Safe for concurrent use.
type LatencySketch struct {
	mu      sync.Mutex
	buckets [512]int64
	n       int64
}

const sketchBase = 1.04 // bucket i holds durations in [base^i, base^(i+1)) microseconds

// Observe records d.
func (s *LatencySketch) Observe(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = int(math.Log(us) / math.Log(sketchBase))
	}
	if i >= len(s.buckets) {
		i = len(s.buckets) - 1
	}
	s.mu.Lock()
	s.buckets[i]++
	s.n++
	s.mu.Unlock()
}

// Quantiles returns the durations at each quantile q in qs (0 < q <= 1).
func (s *LatencySketch) Quantiles(qs ...float64) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]time.Duration, len(qs))
	if s.n == 0 {
		return out
	}
	idx := make([]int, len(qs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return qs[idx[a]] < qs[idx[b]] })
	var cum int64
	k := 0
	for b, c := range s.buckets {
		cum += c
		for k < len(idx) && float64(cum) >= qs[idx[k]]*float64(s.n) {
			mid := math.Pow(sketchBase, float64(b)+0.5) // geometric middle of the bucket
			out[idx[k]] = time.Duration(mid * float64(time.Microsecond))
			k++
		}
	}
	return out
}

// Count is the number of observations.
func (s *LatencySketch) Count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
