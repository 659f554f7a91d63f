package pipeline

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stage is one step between an input record's fetch and the acknowledgement of its last
// output. For each scored record the stages add up to the time from its fetch to its ack:
//
//	fetch          the record's Kafka timestamp → the Fetch that returned it (live only:
//	               the timestamps of a backfill or catch-up are old)
//	decode         the Fetch → its features are complete, less the feedback waits: the
//	               decoding and feature work of the records before it in its fetch and its own
//	feedback_wait  the waits for the feedback (labels) that its features join, and those of
//	               the records before it in its fetch (one blocked record holds up the rest)
//	queue          features complete → its batch starts scoring: the hand-off to the
//	               batcher (blocked while the batcher's queue is full) and the batcher's wait
//	score          the model call(s) of its batch
//	produce        scored → its outputs are handed to the sink (encoding, and the sink's
//	               backpressure when the producer's buffer is full)
//	ack            handed to the sink → its last output is acknowledged by the broker
type Stage int

// The stages, in the order a record goes through them.
const (
	StageFetch Stage = iota
	StageDecode
	StageFeedback
	StageQueue
	StageScore
	StageProduce
	StageAck
	numStages
)

var stageNames = [numStages]string{"fetch", "decode", "feedback_wait", "queue", "score", "produce", "ack"}

func (s Stage) String() string { return stageNames[s] }

// stageBuckets: bucket i counts durations below 1.024µs·2^i; the last one is +Inf only.
// Powers of two make the bucket one bits.Len64, so that a record costs a few atomic adds.
const stageBuckets = 26

// stageTimes is streamscore_stage_seconds, a histogram per stage. It is a collector of its
// own rather than a prometheus.HistogramVec because observe runs several times per record
// on the hot path: an index by bit length and two atomic adds, no lock, no allocation.
// Safe for concurrent use.
type stageTimes struct {
	desc *prometheus.Desc
	h    [numStages]struct {
		counts [stageBuckets]atomic.Uint64
		sum    atomic.Int64 // nanoseconds
	}
}

func newStageTimes() *stageTimes {
	return &stageTimes{desc: prometheus.NewDesc("streamscore_stage_seconds",
		"Time each input record spends in each stage between its Kafka timestamp and the acknowledgement of its last output (stage: fetch, decode, feedback_wait, queue, score, produce, ack; the stages of a record add up to its latency).",
		[]string{"stage"}, nil)}
}

// observe records d nanoseconds spent by one record in stage s.
func (st *stageTimes) observe(s Stage, d int64) {
	d = max(d, 0)
	i := min(bits.Len64(uint64(d)>>10), stageBuckets-1)
	h := &st.h[s]
	h.counts[i].Add(1)
	h.sum.Add(d)
}

// Describe implements prometheus.Collector.
func (st *stageTimes) Describe(ch chan<- *prometheus.Desc) { ch <- st.desc }

// Collect implements prometheus.Collector.
func (st *stageTimes) Collect(ch chan<- prometheus.Metric) {
	for s := range numStages {
		h := &st.h[s]
		buckets := make(map[float64]uint64, stageBuckets-1)
		var n uint64
		for i := range stageBuckets {
			n += h.counts[i].Load()
			if i < stageBuckets-1 {
				buckets[float64(int64(1024)<<i)/1e9] = n
			}
		}
		ch <- prometheus.MustNewConstHistogram(st.desc, n, float64(h.sum.Load())/1e9, buckets, stageNames[s])
	}
}

// monoBase anchors mono: stage timestamps are monotonic nanoseconds since it, an int64
// that a row and a tracker entry carry cheaply. They time the pipeline and never feed a
// feature.
var monoBase = time.Now()

// mono is the monotonic clock in nanoseconds since monoBase (never 0 once running).
func mono() int64 { return int64(time.Since(monoBase)) + 1 }
