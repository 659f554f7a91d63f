package drift

import (
	"encoding/json"
	"fmt"
	"time"
)

// Counts accumulates one window's values against a reference: bin counts and values
// outside the training range, per feature and for the score. Not safe for concurrent use.
type Counts struct {
	ref *Reference
	N   int64
	// bins[j] and out[j] are feature j's; the score's are last.
	bins [][]int64
	out  []int64
}

// NewCounts starts an empty window against ref.
func NewCounts(ref *Reference) *Counts {
	c := &Counts{ref: ref, bins: make([][]int64, len(ref.Features)+1), out: make([]int64, len(ref.Features)+1)}
	for j := range ref.Features {
		c.bins[j] = make([]int64, ref.Features[j].Bins())
	}
	c.bins[len(ref.Features)] = make([]int64, ref.Score.Bins())
	return c
}

// Reference is the reference the counts are judged against.
func (c *Counts) Reference() *Reference { return c.ref }

// Add counts one row: its feature vector (as long as the reference's) and its score.
func (c *Counts) Add(features []float32, score float32) {
	c.N++
	fs := c.ref.Features
	for j := range fs {
		c.add(&fs[j], j, float64(features[j]))
	}
	c.add(&c.ref.Score, len(fs), float64(score))
}

func (c *Counts) add(h *Hist, j int, x float64) {
	c.bins[j][h.Bin(x)]++
	if h.Outside(x) {
		c.out[j]++
	}
}

// Merge adds o's counts (the same window of another partition, same reference).
func (c *Counts) Merge(o *Counts) {
	c.N += o.N
	for j := range c.bins {
		for b := range c.bins[j] {
			c.bins[j][b] += o.bins[j][b]
		}
		c.out[j] += o.out[j]
	}
}

// Reset empties the window for reuse.
func (c *Counts) Reset() {
	c.N = 0
	for j := range c.bins {
		clear(c.bins[j])
	}
	clear(c.out)
}

// Stat is the drift of one feature (or the score) in a window.
type Stat struct {
	Name string  `json:"name"`
	PSI  float64 `json:"psi"`
	// OutOfRange is the share of values outside the training range.
	OutOfRange float64 `json:"out_of_range"`
	// Counts are the bin counts, so that readers can merge windows of several partitions.
	Counts []int64 `json:"counts"`
}

// Stats are the window's statistics: the features' in reference order, then the score's.
func (c *Counts) Stats() (features []Stat, score Stat) {
	features = make([]Stat, len(c.ref.Features))
	for j := range c.ref.Features {
		features[j] = c.stat(&c.ref.Features[j], j)
	}
	return features, c.stat(&c.ref.Score, len(c.ref.Features))
}

func (c *Counts) stat(h *Hist, j int) Stat {
	s := Stat{Name: h.Name, PSI: PSI(h.Counts, c.bins[j]), Counts: append([]int64(nil), c.bins[j]...)}
	if c.N > 0 {
		s.OutOfRange = float64(c.out[j]) / float64(c.N)
	}
	return s
}

// Record is one drift record: one model version's window of one input partition. It is
// the value written to the drift topic; its JSON is deterministic for the same counts.
type Record struct {
	Model struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"model"`
	Source struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
	} `json:"source"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Count int64     `json:"count"`
	// Late counts records of the partition whose event time fell before the window: the
	// window they belonged to had already closed. They are not in the counts.
	Late int64 `json:"late,omitempty"`
	// Partial is set on the first window of a partition that was not read from its first
	// offset (a restart or a rebalance): it holds only the records this instance scored.
	Partial bool `json:"partial,omitempty"`
	// Judged says Count reached the minimum count; the PSI of smaller windows is noise.
	Judged   bool   `json:"judged"`
	Score    Stat   `json:"score"`
	Features []Stat `json:"features"`
}

// NewRecord makes the record of a closed window.
func NewRecord(name, version, topic string, partition int32, start, end time.Time, c *Counts, minCount int64) *Record {
	r := &Record{Start: start.UTC(), End: end.UTC(), Count: c.N, Judged: c.N >= minCount}
	r.Model.Name, r.Model.Version = name, version
	r.Source.Topic, r.Source.Partition = topic, partition
	r.Features, r.Score = c.Stats()
	return r
}

// ParseRecord decodes a drift record.
func ParseRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding a drift record: %w", err)
	}
	return &r, nil
}

// Feature returns the stat of the named feature, or nil.
func (r *Record) Feature(name string) *Stat {
	for i := range r.Features {
		if r.Features[i].Name == name {
			return &r.Features[i]
		}
	}
	return nil
}
