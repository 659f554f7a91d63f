package pipeline

import (
	"sync"
	"time"

	"github.com/streamscore/streamscore/pipeline/record"
)

// TopicPartition names one partition (package record; see Record).
type TopicPartition = record.TopicPartition

// Offset is a commit position (package record; see Record).
type Offset = record.Offset

// tracker knows, per partition, which records are still waiting for outputs to be
// acknowledged, and the highest offset below which everything is done: the commit
// watermark. A record is begun in offset order by the fetch loop, holds one reference for
// its processing plus one per output, and is done when all are released. The watermark
// only passes a record when it and every record before it are done, so a commit never
// covers an output that might still be lost.
type tracker struct {
	mu    sync.Mutex
	parts map[TopicPartition]*partTrack
	// onDone is called, outside the lock, for each record that completes, with its Kafka
	// timestamp (for event-to-prediction latency) and when its outputs were handed to the
	// sink (mono; 0: unknown, for the ack stage).
	onDone func(ts time.Time, handed int64)
}

type partTrack struct {
	tp      TopicPartition
	mu      sync.Mutex
	head    uint64 // sequence number of entries.at(0)
	entries entryRing
	// watermark is the next offset to commit; epoch goes with it.
	watermark int64
	epoch     int32
	committed int64 // last watermark handed to a commit
	drained   chan struct{}
}

type entry struct {
	offset int64
	epoch  int32
	refs   int32
	ts     time.Time
	handed int64 // mono when its outputs were handed to the sink (releaseHanded); 0: not yet
}

// entryRing is a partition's records in flight, oldest first, in a ring: records are
// begun at the back and done at the front all the time, and a ring reuses its array where
// a slice resliced from the front is copied into a new one whenever it runs out at the
// back (per-record garbage, in a catch-up). It grows by doubling and never shrinks: its
// size is the most records a partition ever had in flight.
type entryRing struct {
	buf   []entry // len a power of two, or 0
	start int     // index in buf of the oldest entry
	n     int     // entries in the ring
}

// at returns the i-th oldest entry, i < n.
func (r *entryRing) at(i int) *entry { return &r.buf[(r.start+i)&(len(r.buf)-1)] }

func (r *entryRing) push(e entry) {
	if r.n == len(r.buf) {
		grown := make([]entry, max(64, 2*len(r.buf)))
		for i := range r.n {
			grown[i] = *r.at(i)
		}
		r.buf, r.start = grown, 0
	}
	r.n++
	*r.at(r.n - 1) = e
}

// drop removes the k oldest entries.
func (r *entryRing) drop(k int) {
	r.start = (r.start + k) & (len(r.buf) - 1)
	r.n -= k
}

// handle identifies one begun record.
type handle struct {
	p   *partTrack
	seq uint64
}

func newTracker(onDone func(time.Time, int64)) *tracker {
	return &tracker{parts: make(map[TopicPartition]*partTrack), onDone: onDone}
}

// begin registers a record with one reference (its processing). Records of a partition
// must be begun in offset order, from one goroutine.
func (t *tracker) begin(tp TopicPartition, offset int64, epoch int32, ts time.Time) handle {
	t.mu.Lock()
	p := t.parts[tp]
	if p == nil {
		p = &partTrack{tp: tp, watermark: -1, committed: -1}
		t.parts[tp] = p
	}
	t.mu.Unlock()
	p.mu.Lock()
	seq := p.head + uint64(p.entries.n)
	p.entries.push(entry{offset: offset, epoch: epoch, refs: 1, ts: ts})
	p.mu.Unlock()
	return handle{p: p, seq: seq}
}

// add takes n more references on the record, one per output about to be produced.
func (t *tracker) add(h handle, n int32) {
	h.p.mu.Lock()
	h.p.entries.at(int(h.seq - h.p.head)).refs += n
	h.p.mu.Unlock()
}

// release drops one reference, advancing the watermark past every leading done record.
func (t *tracker) release(h handle) { t.releaseHanded(h, 0) }

// releaseHanded is release for the reference a record holds while it is processed, by the
// code that has just handed its outputs to the sink at handed (mono; 0: not recorded).
func (t *tracker) releaseHanded(h handle, handed int64) {
	p := h.p
	var done *entry
	p.mu.Lock()
	e := p.entries.at(int(h.seq - p.head))
	e.refs--
	if handed != 0 {
		e.handed = handed
	}
	var doneE entry
	if e.refs == 0 && t.onDone != nil && !e.ts.IsZero() {
		doneE = *e
		done = &doneE
	}
	n := 0
	for n < p.entries.n && p.entries.at(n).refs == 0 {
		n++
	}
	if n > 0 {
		last := p.entries.at(n - 1)
		p.watermark, p.epoch = last.offset+1, last.epoch
		p.entries.drop(n)
		p.head += uint64(n)
		if p.entries.n == 0 && p.drained != nil {
			close(p.drained)
			p.drained = nil
		}
	}
	p.mu.Unlock()
	if done != nil {
		t.onDone(done.ts, done.handed)
	}
}

// pending counts records not yet done, over all partitions.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.parts {
		p.mu.Lock()
		n += p.entries.n
		p.mu.Unlock()
	}
	return n
}

// uncommitted returns the watermarks that moved since they were last returned, for the
// partitions in only (all partitions when only is nil).
func (t *tracker) uncommitted(only map[TopicPartition]bool) []Offset {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Offset
	for tp, p := range t.parts {
		if only != nil && !only[tp] {
			continue
		}
		p.mu.Lock()
		if p.watermark > p.committed {
			out = append(out, Offset{TopicPartition: tp, Offset: p.watermark, LeaderEpoch: p.epoch})
			p.committed = p.watermark
		}
		p.mu.Unlock()
	}
	return out
}

// rollback marks offsets as not committed, after a failed commit, so the next round
// tries them again.
func (t *tracker) rollback(offs []Offset) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range offs {
		if p := t.parts[o.TopicPartition]; p != nil {
			p.mu.Lock()
			if p.committed == o.Offset {
				p.committed = -1
			}
			p.mu.Unlock()
		}
	}
}

// drained returns a channel closed when the partition has no records in flight.
func (t *tracker) drained(tp TopicPartition) <-chan struct{} {
	t.mu.Lock()
	p := t.parts[tp]
	t.mu.Unlock()
	ch := make(chan struct{})
	if p == nil {
		close(ch)
		return ch
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries.n == 0 {
		close(ch)
		return ch
	}
	if p.drained == nil {
		p.drained = ch
	}
	return p.drained
}

// drainedAll returns the drained channels of every partition tracked now.
func (t *tracker) drainedAll() []<-chan struct{} {
	t.mu.Lock()
	tps := make([]TopicPartition, 0, len(t.parts))
	for tp := range t.parts {
		tps = append(tps, tp)
	}
	t.mu.Unlock()
	chs := make([]<-chan struct{}, len(tps))
	for i, tp := range tps {
		chs[i] = t.drained(tp)
	}
	return chs
}

// forget drops partitions that are no longer ours.
func (t *tracker) forget(tps []TopicPartition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range tps {
		delete(t.parts, tp)
	}
}
