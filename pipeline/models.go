package pipeline

import (
	"math"
	"sync"

	"github.com/streamscore/streamscore/pipeline/record"
)

// Models chooses the model versions that score each batch, so that a live swap or a
// replay by history happens between batches and never inside one. Choose is called once
// per batch on the batcher's goroutine and, for the version header of dead letters, on
// the fetch goroutine: it must be safe for concurrent use. Without Config.Models the
// operator scores everything with Config.Model.
type Models interface {
	Choose() ModelChoice
}

// ModelChoice is the scorers of one batch.
type ModelChoice struct {
	// Live scores every row of the batch, unless Route is set; it is also the version a
	// switch marker names.
	Live Scorer
	// Route, when set, picks the scorer of each record: experiment arms and segment
	// rules live, the routing that was in force for the record in a replay by history.
	// Consecutive rows with the same scorer are scored in one call; scores do not depend
	// on how rows are batched (the registry refuses models whose do).
	Route *Route
	// Shadow, when set, also scores every row; its predictions go to Topics.Shadow.
	// Route.Mirror, when set, takes its place.
	Shadow Scorer
}

// Marks configure the switch markers of live scoring: whenever the version that scores
// a partition changes (a swap, an assignment, a start), the first record it scores in
// that partition gets a marker, written through the sink like any other output of that
// record, so that it is acknowledged before the record's offset is committed (and is in
// the same transaction in exactly-once mode). A replay reads the markers to score every
// record with the version that was live for it.
type Marks struct {
	Topic string
	// Encode makes the marker record for a record's position, the live version and the
	// routing in force (Route.Spec; nil: none).
	Encode func(topic string, partition int32, offset int64, name, version string, routing []byte) (key, value []byte, err error)
}

// versions holds what the operator prepares once per model version: the prediction
// encoder and the read-only header slice every output of that version shares. It is used
// from the batcher goroutine (encoders) and the fetch goroutine (headers of dead
// letters), hence the lock.
type versions struct {
	mu   sync.Mutex
	encs map[string]*predictionEncoder
	hdrs map[string][]Header
}

func (v *versions) encoder(m Scorer) *predictionEncoder {
	v.mu.Lock()
	defer v.mu.Unlock()
	key := m.Name() + "\x00" + m.Version()
	e, ok := v.encs[key]
	if !ok {
		if v.encs == nil {
			v.encs = map[string]*predictionEncoder{}
		}
		e = newPredictionEncoder(m.Name(), m.Version())
		v.encs[key] = e
	}
	return e
}

// header is the model.version header of m's outputs; callers must not modify it.
func (v *versions) header(m Scorer) []Header {
	v.mu.Lock()
	defer v.mu.Unlock()
	h, ok := v.hdrs[m.Version()]
	if !ok {
		if v.hdrs == nil {
			v.hdrs = map[string][]Header{}
		}
		h = []Header{{Key: record.HeaderModelVersion, Value: []byte(m.Version())}}
		v.hdrs[m.Version()] = h
	}
	return h
}

// staticModels is the Models of an operator configured with one model.
type staticModels struct{ m Scorer }

func (s staticModels) Choose() ModelChoice { return ModelChoice{Live: s.m} }

// run is a stretch of a batch's rows scored by one model.
type run struct {
	start, end int
	m          Scorer
}

// runs splits n rows into stretches scored by one model each: one stretch unless the
// choice picks a version per record.
func (c ModelChoice) runs(rows []row, buf []run) []run {
	buf = buf[:0]
	if c.Route == nil {
		return append(buf, run{0, len(rows), c.Live})
	}
	for i := range rows {
		m := c.Live // a request row has no record: the live version scores it
		if rows[i].rec != nil {
			m = c.Route.Pick(rows[i].rec, rows[i].ev.fields)
		}
		if n := len(buf); n > 0 && buf[n-1].m == m {
			buf[n-1].end = i + 1
			continue
		}
		buf = append(buf, run{i, i + 1, m})
	}
	return buf
}

// partVersions remembers, per input partition, the version that last scored it, so that
// a marker is written when it changes. Revocations and losses forget partitions from
// other goroutines.
type partVersions struct {
	mu sync.Mutex
	v  map[TopicPartition]string
}

// changed records version for tp and reports whether it differs from the last one.
func (p *partVersions) changed(tp TopicPartition, version string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.v == nil {
		p.v = map[TopicPartition]string{}
	}
	if p.v[tp] == version {
		return false
	}
	p.v[tp] = version
	return true
}

func (p *partVersions) forget(tps []TopicPartition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tp := range tps {
		delete(p.v, tp)
	}
}

// scoreDiff is |a − b| for the shadow agreement histogram, 0 when both are equal bits.
func scoreDiff(a, b float32) float64 {
	if math.Float32bits(a) == math.Float32bits(b) {
		return 0
	}
	return math.Abs(float64(a) - float64(b))
}
