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

// The buckets of streamscore_stage_seconds are log-linear: every power of two of 1.024µs
// units is split into stageSub equal sub-buckets, so that a bucket is at most a quarter of
// its lower bound wide and a quantile interpolated within it is within 25% of the true one
// (20 ms and 30 ms land in different buckets; power-of-two buckets told them apart only
// within a factor of two). The first stageSub buckets are one unit wide each: [0, 1.024µs),
// [1.024µs, 2.048µs), ... The finite buckets end at 1.024µs·2^stageOctaves (34 s); the
// last bucket is +Inf only. The index is a shift, a bits.Len64 and a mask: a record still
// costs a few atomic adds.
const (
	stageSubBits = 2
	stageSub     = 1 << stageSubBits
	stageOctaves = 25
	// stageBuckets: stageSub linear buckets below stageSub units, stageSub per octave
	// above up to 2^stageOctaves units, and +Inf.
	stageBuckets = stageSub + (stageOctaves-stageSubBits)*stageSub + 1
)

// stageBucket is the bucket of a duration of d nanoseconds (d >= 0).
func stageBucket(d int64) int {
	v := uint64(d) >> 10 // 1.024µs units
	if v < stageSub {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v is in [2^e, 2^(e+1)), e >= stageSubBits
	sub := int(v>>(e-stageSubBits)) & (stageSub - 1)
	return min(stageSub+(e-stageSubBits)*stageSub+sub, stageBuckets-1)
}

// stageUpperBound is the upper bound of finite bucket i in seconds: the inverse of
// stageBucket, whose buckets are [stageUpperBound(i-1), stageUpperBound(i)).
func stageUpperBound(i int) float64 {
	units := int64(i + 1)
	if i >= stageSub {
		j := i - stageSub
		e := j/stageSub + stageSubBits
		units = int64(stageSub+j%stageSub+1) << (e - stageSubBits)
	}
	return float64(units<<10) / 1e9
}

// stageTimes is streamscore_stage_seconds, a histogram per stage. It is a collector of its
// own rather than a prometheus.HistogramVec because observe runs several times per record
// on the hot path: an index computed from the bit length and two atomic adds, no lock, no
// allocation. Safe for concurrent use.
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
	h := &st.h[s]
	h.counts[stageBucket(d)].Add(1)
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
				buckets[stageUpperBound(i)] = n
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
