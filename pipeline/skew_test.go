package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/scorer"
)

// The skew audit's property without a broker: for the same input log and model, live
// scoring (a consumer group whose partitions are revoked, lost, reassigned and whose
// instances restart from the committed offsets, rebuilding window state from the log),
// a backfill and an export give every event the same feature vector, bit for bit, and
// live and backfill the same score, bit for bit, whatever the batch sizes. Each seed
// scripts a different log, fetch sizes, batch sizes, feedback interleaving and sequence of
// rebalances and restarts. The Kafka path is checked end to end, on fewer runs, by
// internal/drivers' TestIntegrationLiveEqualsBackfillAndExport.

const skewSeeds = 20

func TestLiveEqualsBackfillAndExportOnSeeds(t *testing.T) {
	t.Parallel() // self-contained (its own model session): overlaps the package's other long tests
	s, fs := handbookSpec(t)
	model := openTestModel(t)
	for seed := uint64(1); seed <= skewSeeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			checkSkewSeed(t, seed, s, fs, model)
		})
	}
}

// checkSkewSeed runs one seed: backfill, export and live, then compares them.
func checkSkewSeed(t *testing.T, seed uint64, s *Schema, fs *FeatureSpec, model Scorer) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	// 20 minutes apart: 1,200 events span 16 days, so the terminal windows (which look back
	// from t-7d) and the feedback join have rows to count.
	recs, bad, labels := genRecords(1200, 150, 40, 20*time.Minute, 25, rng)
	bounded := func(batch int, m Scorer) *auditSink {
		sink := newAuditSink()
		op, err := New(Config{
			Schema: s, Features: fs, Model: m, Threshold: 0.5, IncludeFeatures: true,
			Topics:   Topics{Predictions: "preds", DeadLetter: "dlq"},
			Batch:    scorer.BatcherConfig{MaxSize: batch},
			Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(seed, uint64(batch)))},
			Logger:   zap.NewNop(),
		}, &sliceSource{recs: recs}, sink)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := op.Run(context.Background()); err != nil {
			t.Fatalf("seed %d: bounded run: %v", seed, err)
		}
		return sink
	}
	backfill := bounded(4096, model)
	export := bounded(1024, FeaturesOnly{N: fs.Len()})

	g := &scriptedGroup{recs: recs, committed: map[int32]int64{}}
	hist := &memHistory{recs: recs}
	live := newAuditSink()
	instances := 3 + rng.IntN(2)
	for i := range instances {
		g.start(rng, i == instances-1)
		op, err := New(Config{
			Schema: s, Features: fs, Model: model, Threshold: 0.5, IncludeFeatures: true,
			Topics:         Topics{Predictions: "preds", DeadLetter: "dlq"},
			Batch:          scorer.BatcherConfig{MaxSize: []int{1, 7, 64, 512}[rng.IntN(4)]},
			CommitInterval: time.Millisecond,
			Feedback:       &memFeedback{recs: labels, live: true, rng: rand.New(rand.NewPCG(seed, uint64(100+i)))},
			History:        hist,
			Logger:         zap.NewNop(),
		}, g, live)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := op.Run(context.Background()); err != nil {
			t.Fatalf("seed %d: live instance %d: %v", seed, i+1, err)
		}
	}
	// Checks on the script: without these the comparison below proves less than it says.
	if g.revokes == 0 || g.losses+g.revokes < 2 || hist.calls == 0 {
		t.Fatalf("seed %d: the script revoked %d times, lost %d, rebuilt state %d times: want revocations and rebuilds", seed, g.revokes, g.losses, hist.calls)
	}
	compareSkew(t, seed, recs, bad, live, backfill, export)
	t.Logf("seed %d: %d events, %d live instances, %d revocations, %d losses, %d state rebuilds, %d live duplicates: 0 mismatches",
		seed, len(recs), instances, g.revokes, g.losses, hist.calls, live.dups)
}

// compareSkew fails unless every event has one outcome everywhere and the same bits.
func compareSkew(t *testing.T, seed uint64, recs []Record, bad map[srcID]bool, live, backfill, export *auditSink) {
	t.Helper()
	if live.conflicts != "" {
		t.Fatalf("seed %d: live scored an event twice with different results: %s", seed, live.conflicts)
	}
	for _, r := range recs {
		id := srcID{TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset}
		if bad[id] {
			if !live.dead[id] || !backfill.dead[id] || !export.dead[id] {
				t.Fatalf("seed %d: malformed %v dead-lettered live %v, backfill %v, export %v", seed, id, live.dead[id], backfill.dead[id], export.dead[id])
			}
			continue
		}
		l, lok := live.preds[id]
		b, bok := backfill.preds[id]
		e, eok := export.preds[id]
		if !lok || !bok || !eok {
			t.Fatalf("seed %d: %v has a prediction live %v, backfill %v, export %v", seed, id, lok, bok, eok)
		}
		if math.Float32bits(l.score) != math.Float32bits(b.score) {
			t.Fatalf("seed %d: %v scored %v live, %v in the backfill", seed, id, l.score, b.score)
		}
		if !sameBits(l.feats, b.feats) || !sameBits(l.feats, e.feats) {
			t.Fatalf("seed %d: %v features\nlive     %v\nbackfill %v\nexport   %v", seed, id, l.feats, b.feats, e.feats)
		}
	}
}

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// auditSink keeps each event's prediction (score and features) and dead letters, and
// notes a second prediction of an event that differs from the first.
type auditSink struct {
	mu        sync.Mutex
	preds     map[srcID]scored
	dead      map[srcID]bool
	dups      int
	conflicts string
}

type scored struct {
	score float32
	feats []float32
}

func newAuditSink() *auditSink {
	return &auditSink{preds: map[srcID]scored{}, dead: map[srcID]bool{}}
}

func (k *auditSink) Produce(out *Output, ack func(error)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch out.Topic {
	case "preds":
		var p Prediction
		if err := json.Unmarshal(out.Value, &p); err != nil {
			ack(err)
			return
		}
		id := srcID{TopicPartition{Topic: p.Source.Topic, Partition: p.Source.Partition}, p.Source.Offset}
		got := scored{p.Score, p.Features}
		if prev, ok := k.preds[id]; ok {
			k.dups++
			if math.Float32bits(prev.score) != math.Float32bits(got.score) || !sameBits(prev.feats, got.feats) {
				k.conflicts = fmt.Sprintf("%v: %v %v, then %v %v", id, prev.score, prev.feats, got.score, got.feats)
			}
		}
		k.preds[id] = got
	case "dlq":
		k.dead[srcID{TopicPartition{Topic: out.Source.Topic, Partition: out.Source.Partition}, out.Source.Offset}] = true
	}
	ack(nil)
}

func (k *auditSink) Flush(context.Context) error { return nil }

// scriptedGroup is a consumer group's source as one member sees it, over a fixed log, with
// a scripted sequence of instances: each starts at the committed offsets, owns some
// partitions, and halfway through its budget has some revoked (or lost) and others
// assigned, inside Fetch, as franz-go runs rebalance callbacks inside a poll. The last
// instance owns every partition and reads to the end of the log. Fetch and AllowRebalance
// run on the fetch loop; Commit on any goroutine.
type scriptedGroup struct {
	recs []Record

	mu        sync.Mutex
	committed map[int32]int64 // next offset to read, per partition

	// the running instance
	rng      *rand.Rand
	last     bool
	owned    []int32
	pos      map[int32]int // index into recs of the partition's next record
	budget   int           // records left to fetch before the instance stops (not last)
	rebalAt  int           // budget at which the rebalance comes
	rebal    bool
	revoked  func(context.Context, []TopicPartition)
	lost     func([]TopicPartition)
	revokes  int
	losses   int
	fetchRNG *rand.Rand
}

var skewPartitions = []int32{0, 1, 2}

// start scripts the next instance.
func (g *scriptedGroup) start(rng *rand.Rand, last bool) {
	g.rng, g.last, g.rebal = rng, last, false
	g.fetchRNG = rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	g.owned = nil
	for _, p := range skewPartitions {
		if last || rng.IntN(3) > 0 {
			g.owned = append(g.owned, p)
		}
	}
	if len(g.owned) == 0 {
		g.owned = []int32{skewPartitions[rng.IntN(len(skewPartitions))]}
	}
	g.pos = map[int32]int{}
	for _, p := range g.owned {
		g.assign(p)
	}
	g.budget = 150 + rng.IntN(250)
	g.rebalAt = g.budget / 2
}

// assign positions p at its committed offset.
func (g *scriptedGroup) assign(p int32) {
	g.mu.Lock()
	from := g.committed[p]
	g.mu.Unlock()
	g.pos[p] = slices.IndexFunc(g.recs, func(r Record) bool { return r.Partition == p && r.Offset >= from })
}

func (g *scriptedGroup) SetRebalanceHandlers(revoked func(context.Context, []TopicPartition), lost func([]TopicPartition)) {
	g.revoked, g.lost = revoked, lost
}

func (g *scriptedGroup) AllowRebalance() {}

func (g *scriptedGroup) Commit(_ context.Context, offs []Offset) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, o := range offs {
		g.committed[o.Partition] = max(g.committed[o.Partition], o.Offset)
	}
	return nil
}

// rebalance revokes (or loses) some owned partitions and assigns some others.
func (g *scriptedGroup) rebalance(ctx context.Context) {
	g.rebal = true
	var keep, drop []int32
	for _, p := range g.owned {
		if g.rng.IntN(2) == 0 || len(drop) == 0 && p == g.owned[len(g.owned)-1] {
			drop = append(drop, p)
		} else {
			keep = append(keep, p)
		}
	}
	tps := make([]TopicPartition, len(drop))
	for i, p := range drop {
		tps[i] = TopicPartition{Topic: "in", Partition: p}
		delete(g.pos, p)
	}
	if g.revokes > 0 && g.rng.IntN(3) == 0 { // the first is a revocation: the common case
		g.losses++
		g.lost(tps)
	} else {
		g.revokes++
		g.revoked(ctx, tps)
	}
	g.owned = keep
	for _, p := range skewPartitions { // some partitions come (back) to this member
		if !slices.Contains(g.owned, p) && (len(g.owned) == 0 || g.rng.IntN(2) == 0) {
			g.owned = append(g.owned, p)
			g.assign(p)
		}
	}
}

func (g *scriptedGroup) Fetch(ctx context.Context) ([]Record, error) {
	if !g.last && !g.rebal && g.budget <= g.rebalAt {
		g.rebalance(ctx)
	}
	if !g.last && g.budget <= 0 {
		return nil, io.EOF // the instance stops: Run drains, commits and returns
	}
	var open []int32
	for _, p := range g.owned {
		if g.pos[p] >= 0 {
			open = append(open, p)
		}
	}
	if len(open) == 0 {
		return nil, io.EOF
	}
	p := open[g.fetchRNG.IntN(len(open))]
	n := 1 + g.fetchRNG.IntN(60)
	if !g.last {
		n = min(n, g.budget)
	}
	var out []Record
	i := g.pos[p]
	for ; i < len(g.recs) && len(out) < n; i++ {
		if g.recs[i].Partition == p {
			out = append(out, g.recs[i])
		}
	}
	for i < len(g.recs) && g.recs[i].Partition != p {
		i++
	}
	if i >= len(g.recs) {
		i = -1 // the partition's end
	}
	g.pos[p] = i
	g.budget -= len(out)
	return out, nil
}
