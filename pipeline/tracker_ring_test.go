package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestTrackerRingWrapsAndGrows begins records in bursts while earlier ones are released
// out of order, as a catch-up does, so that a partition's ring of records in flight wraps
// around its array and grows while wrapped. After every step the watermark is exactly one
// past the last record of the leading run of done records, and pending counts the rest: a
// ring that lost or mixed up an entry commits too far or stops short.
func TestTrackerRingWrapsAndGrows(t *testing.T) {
	for seed := uint64(0); seed < 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 27))
		tr := newTracker(nil)
		tp := TopicPartition{Topic: "in", Partition: 3}
		var (
			handles   []handle // every record begun, in offset order
			offsets   []int64
			done      []bool
			inFlight  []int // indexes into handles
			front     int   // records before front are done
			offset    int64
			watermark = int64(-1)
		)
		for step := range 3000 {
			// bursts of up to 150 records (past the first array of 64) while up to a few
			// hundred are in flight
			if rng.IntN(3) == 0 || len(inFlight) == 0 {
				for range 1 + rng.IntN(150) {
					offset += 1 + int64(rng.IntN(2)) // gaps, as compaction leaves
					inFlight = append(inFlight, len(handles))
					handles = append(handles, tr.begin(tp, offset, 1, time.Time{}))
					offsets, done = append(offsets, offset), append(done, false)
				}
			}
			for range 1 + rng.IntN(40) {
				if len(inFlight) == 0 {
					break
				}
				i := rng.IntN(min(len(inFlight), 200)) // mostly old ones: the front moves
				tr.release(handles[inFlight[i]])
				done[inFlight[i]] = true
				inFlight = append(inFlight[:i], inFlight[i+1:]...)
			}
			for front < len(done) && done[front] {
				front++
			}
			if got := tr.uncommitted(nil); len(got) == 1 {
				watermark = got[0].Offset
			}
			want := int64(-1)
			if front > 0 {
				want = offsets[front-1] + 1
			}
			if watermark != want {
				t.Fatalf("seed %d step %d: watermark %d, want %d", seed, step, watermark, want)
			}
			if tr.pending() != len(handles)-front {
				t.Fatalf("seed %d step %d: %d pending, want %d", seed, step, tr.pending(), len(handles)-front)
			}
		}
	}
}
