package monitor

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// Window is one event-time window of one model version, merged over the partitions
// whose drift records it read.
type Window struct {
	Version    string
	Start, End time.Time
	Partitions int
	Count      int64
	Partial    bool
	Features   []drift.Stat
	Score      drift.Stat
}

// Merge sums the per-partition drift records of each (version, window) and judges the
// sums against ref: the PSI of a window over all partitions, which no single record has.
func Merge(ref *drift.Reference, recs []*drift.Record) ([]Window, error) {
	type key struct {
		version string
		start   time.Time
	}
	acc := map[key]*Window{}
	for _, r := range recs {
		if len(r.Features) != len(ref.Features) {
			return nil, fmt.Errorf("a drift record of %s has %d features, the reference %d: report against the model's own reference",
				r.Model.Version, len(r.Features), len(ref.Features))
		}
		k := key{r.Model.Version, r.Start}
		w := acc[k]
		if w == nil {
			w = &Window{Version: r.Model.Version, Start: r.Start, End: r.End, Features: make([]drift.Stat, len(ref.Features))}
			for j := range ref.Features {
				w.Features[j] = drift.Stat{Name: ref.Features[j].Name, Counts: make([]int64, ref.Features[j].Bins())}
			}
			w.Score = drift.Stat{Name: "score", Counts: make([]int64, ref.Score.Bins())}
			acc[k] = w
		}
		w.Partitions++
		w.Partial = w.Partial || r.Partial
		for j := range w.Features {
			w.Features[j].OutOfRange += r.Features[j].OutOfRange * float64(r.Count)
			if err := add(w.Features[j].Counts, r.Features[j].Counts); err != nil {
				return nil, fmt.Errorf("%s: %w", w.Features[j].Name, err)
			}
		}
		w.Score.OutOfRange += r.Score.OutOfRange * float64(r.Count)
		if err := add(w.Score.Counts, r.Score.Counts); err != nil {
			return nil, fmt.Errorf("score: %w", err)
		}
		w.Count += r.Count
	}
	out := make([]Window, 0, len(acc))
	for _, w := range acc {
		for j := range w.Features {
			judge(&w.Features[j], &ref.Features[j], w.Count)
		}
		judge(&w.Score, &ref.Score, w.Count)
		out = append(out, *w)
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Start.Equal(out[b].Start) {
			return out[a].Start.Before(out[b].Start)
		}
		return out[a].Version < out[b].Version
	})
	return out, nil
}

func add(dst, src []int64) error {
	if len(dst) != len(src) {
		return fmt.Errorf("%d bins in a record, %d in the reference: the records were made with another reference", len(src), len(dst))
	}
	for i := range src {
		dst[i] += src[i]
	}
	return nil
}

func judge(s *drift.Stat, h *drift.Hist, n int64) {
	s.PSI = drift.PSI(h.Counts, s.Counts)
	if n > 0 {
		s.OutOfRange /= float64(n)
	}
}

// Print writes windows as a table: one row per window, the score's PSI and each feature's.
// Windows with fewer than minCount rows are marked, not judged.
func Print(w io.Writer, windows []Window, minCount int64) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	if len(windows) == 0 {
		_, err := fmt.Fprintln(w, "no drift records")
		return err
	}
	fmt.Fprint(tw, "window start\tversion\tparts\trows\tscore\t")
	for _, f := range windows[0].Features {
		fmt.Fprintf(tw, "%s\t", f.Name)
	}
	fmt.Fprintln(tw)
	for _, win := range windows {
		note := ""
		if win.Count < minCount {
			note = " (too few rows)"
		} else if win.Partial {
			note = " (partial)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%d\t%d\t%.3f\t", win.Start.UTC().Format(time.RFC3339), note, win.Version, win.Partitions, win.Count, win.Score.PSI)
		for _, f := range win.Features {
			fmt.Fprintf(tw, "%.3f\t", f.PSI)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// ReadTopic reads the drift records of topic to its end offsets (seen now) and merges
// them against ref (Merge).
func ReadTopic(ctx context.Context, kc topics.ClientConfig, topic string, ref *drift.Reference) ([]Window, error) {
	var recs []*drift.Record
	err := topics.ReadToEnd(ctx, kc, []string{topic}, func(rs []record.Record) error {
		for _, r := range rs {
			d, err := drift.ParseRecord(r.Value)
			if err != nil {
				return fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			recs = append(recs, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return Merge(ref, recs)
}
