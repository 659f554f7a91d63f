//go:build integration

package drivers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// flow follows the output topics of a soak phase as any consumer would (read_committed:
// under exactly-once it sees only committed transactions), counting outputs per input
// record and timing each fault's recovery as the outputs arrive.
type flow struct {
	out    *audit.Outputs
	preds  string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	pending []*recovery
	err     error // a fetch that failed, which ended the flow
}

// recovery is one fault's wait for predictions to flow again. marks holds, per input
// partition, the end offset read just before the fault: the first event written after it.
// A partition has recovered once a prediction for an event at or past its mark is read
// back: took is the time from the fault to that read (an upper bound of the moment the
// prediction was visible, by the reader's own latency, tens of milliseconds).
type recovery struct {
	kind, target string
	at           time.Time
	marks        map[int32]int64
	took         map[int32]time.Duration
}

// startFlow reads the phase's output topics from their start until the test ends.
func startFlow(t *testing.T, c *config.Config) *flow {
	t.Helper()
	r, err := topics.NewReader(c.Kafka, true, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &flow{out: audit.NewOutputs(c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter),
		preds: c.Topics.Predictions, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			recs, err := r.Fetch(ctx)
			f.add(recs, time.Now())
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
		r.Close()
	})
	return f
}

// add counts recs and marks the partitions they show flowing again, at now.
func (f *flow) add(recs []record.Record, now time.Time) {
	if len(recs) == 0 {
		return
	}
	f.out.Add(recs)
	top := map[int32]int64{} // highest source offset predicted, per input partition
	for i := range recs {
		if recs[i].Topic != f.preds {
			continue
		}
		var p struct {
			Source struct {
				Partition int32 `json:"partition"`
				Offset    int64 `json:"offset"`
			} `json:"source"`
		}
		if json.Unmarshal(recs[i].Value, &p) != nil {
			continue // audit.Outputs counts it as undecodable
		}
		if o, ok := top[p.Source.Partition]; !ok || p.Source.Offset > o {
			top[p.Source.Partition] = p.Source.Offset
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.pending {
		for p, o := range top {
			if m, ok := r.marks[p]; ok && o >= m {
				if _, seen := r.took[p]; !seen {
					r.took[p] = now.Sub(r.at)
				}
			}
		}
	}
	f.pending = slices.DeleteFunc(f.pending, func(r *recovery) bool { return len(r.took) == len(r.marks) })
}

// watch starts timing a fault that happens now, from the end offsets read before it.
func (f *flow) watch(kind, target string, marks map[int32]int64) *recovery {
	r := &recovery{kind: kind, target: target, at: time.Now(), marks: marks, took: map[int32]time.Duration{}}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, r)
	return r
}

// recovered says whether every partition of r flows again.
func (f *flow) recovered(r *recovery) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(r.took) == len(r.marks)
}

// failed is the error that ended the flow's reads, if any.
func (f *flow) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// summary is "median M worst W" over the durations, or what is known of them.
func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no sample"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("median %.1fs worst %.1fs (%d samples)", s[len(s)/2].Seconds(), s[len(s)-1].Seconds(), len(s))
}

// describe is one fault's line: its per-partition recovery times, median and worst.
func (f *flow) describe(r *recovery) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := make([]int32, 0, len(r.marks))
	for p := range r.marks {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	var b strings.Builder
	var ds []time.Duration
	for _, p := range parts {
		if d, ok := r.took[p]; ok {
			ds = append(ds, d)
			fmt.Fprintf(&b, " p%d %.1fs", p, d.Seconds())
		} else {
			fmt.Fprintf(&b, " p%d -", p)
		}
	}
	missing := ""
	if n := len(r.marks) - len(r.took); n > 0 {
		missing = fmt.Sprintf(", %d partition(s) not flowing again while followed (-)", n)
	}
	return fmt.Sprintf("%s %s: per partition%s; %s%s", r.kind, r.target, b.String(), summary(ds), missing)
}

// byKind pools the per-partition recovery times of every fault of each kind, in the order
// the kinds first occurred: "kind: median M worst W (n samples, f faults)".
func (f *flow) byKind(rs []*recovery) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var kinds []string
	pooled := map[string][]time.Duration{}
	faults := map[string]int{}
	lost := map[string]int{}
	for _, r := range rs {
		if _, ok := faults[r.kind]; !ok {
			kinds = append(kinds, r.kind)
		}
		faults[r.kind]++
		lost[r.kind] += len(r.marks) - len(r.took)
		for _, d := range r.took {
			pooled[r.kind] = append(pooled[r.kind], d)
		}
	}
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		line := fmt.Sprintf("%s ×%d: %s", k, faults[k], summary(pooled[k]))
		if lost[k] > 0 {
			line += fmt.Sprintf(", %d partition(s) not flowing again while followed", lost[k])
		}
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}
