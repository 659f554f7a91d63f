package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestTrackerNeverCommitsAheadOfAcks acknowledges outputs in random order and checks at
// every step that the commit watermark never passes a record with an unacknowledged
// output, and that it reaches the end once all are acknowledged.
func TestTrackerNeverCommitsAheadOfAcks(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		tr := newTracker(nil)
		tp := TopicPartition{Topic: "in", Partition: 0}
		const n = 500
		type ref struct {
			h      handle
			offset int64
		}
		var refs []ref
		outs := make([]int, n)
		offset := int64(100)
		offsets := make([]int64, n)
		for i := 0; i < n; i++ {
			offset += 1 + int64(rng.IntN(3)) // gaps, as compaction and transaction markers leave
			offsets[i] = offset
			h := tr.begin(tp, offset, 7, time.Time{})
			outs[i] = 1 + rng.IntN(2) // a prediction, maybe an alert
			tr.add(h, int32(outs[i]))
			for k := 0; k < outs[i]; k++ {
				refs = append(refs, ref{h, offset})
			}
			refs = append(refs, ref{h, offset}) // the processing reference
		}
		rng.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
		left := map[int64]int{}
		for i := 0; i < n; i++ {
			left[offsets[i]] = outs[i] + 1
		}
		for _, r := range refs {
			tr.release(r.h)
			left[r.offset]--
			lowestOpen := int64(1 << 62)
			for off, l := range left {
				if l > 0 && off < lowestOpen {
					lowestOpen = off
				}
			}
			for _, o := range tr.uncommitted(nil) {
				if o.Offset > lowestOpen {
					t.Fatalf("seed %d: committed %d while offset %d still has outputs in flight", seed, o.Offset, lowestOpen)
				}
				if o.LeaderEpoch != 7 {
					t.Fatalf("epoch %d, want 7", o.LeaderEpoch)
				}
			}
		}
		if tr.pending() != 0 {
			t.Fatalf("seed %d: %d pending after all acks", seed, tr.pending())
		}
		tr.rollback([]Offset{{TopicPartition: tp, Offset: offsets[n-1] + 1}})
		got := tr.uncommitted(nil)
		if len(got) != 1 || got[0].Offset != offsets[n-1]+1 {
			t.Fatalf("seed %d: final watermark %+v, want %d", seed, got, offsets[n-1]+1)
		}
	}
}

func TestTrackerDrainedAndForget(t *testing.T) {
	tr := newTracker(nil)
	a, b := TopicPartition{Topic: "in", Partition: 0}, TopicPartition{Topic: "in", Partition: 1}
	ha := tr.begin(a, 0, 0, time.Time{})
	tr.begin(b, 0, 0, time.Time{})
	select {
	case <-tr.drained(a):
		t.Fatal("partition with a record in flight reported drained")
	default:
	}
	ch := tr.drained(a)
	tr.release(ha)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("drained channel not closed after the last release")
	}
	only := tr.uncommitted(map[TopicPartition]bool{a: true})
	if len(only) != 1 || only[0].TopicPartition != a || only[0].Offset != 1 {
		t.Fatalf("uncommitted(a) = %+v", only)
	}
	tr.forget([]TopicPartition{a, b})
	if tr.pending() != 0 {
		t.Fatal("forgotten partitions still pending")
	}
	<-tr.drained(b) // unknown partitions are drained
}
