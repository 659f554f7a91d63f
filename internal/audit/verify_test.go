package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamscore/streamscore/topics"
)

// writePredictions writes predictions of offsets 0..n-1 as a backfill file would, with
// the version and score that f gives each offset.
func writePredictions(t *testing.T, n int, f func(off int) (version string, score float32)) string {
	t.Helper()
	var b strings.Builder
	for off := range n {
		v, s := f(off)
		fmt.Fprintf(&b, `{"source":{"topic":"in","partition":0,"offset":%d},"key":"1","score":%v,"model":{"name":"fraud","version":%q},"event_time":"2018-04-01T00:00:00Z","scored_at":"2026-01-01T00:00:00Z"}`+"\n", off, s, v)
	}
	path := filepath.Join(t.TempDir(), "p.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifyComparesDifferentVersionsInsteadOfFailing(t *testing.T) {
	a := writePredictions(t, 100, func(off int) (string, float32) { return "aaaa", float32(off) / 100 })
	b := writePredictions(t, 100, func(off int) (string, float32) {
		if off < 50 {
			return "aaaa", float32(off) / 100 // same version: must be bit-identical
		}
		return "bbbb", float32(off)/100 - 0.1 // a what-if: lower scores
	})
	rep, err := Verify(context.Background(), topics.ClientConfig{}, "file:"+a, "file:"+b, Options{Show: 3, Threshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Joined != 100 || rep.Mismatches != 0 {
		t.Fatalf("report %+v: want OK, 100 joined, no mismatch", rep)
	}
	if len(rep.Pairs) != 1 {
		t.Fatalf("pairs %+v: want one (aaaa -> bbbb)", rep.Pairs)
	}
	p := rep.Pairs[0]
	// Offsets 50..59 score 0.50..0.59 with aaaa (alerts) and 0.40..0.49 with bbbb (none).
	if p.A != "aaaa" || p.B != "bbbb" || p.Events != 50 || p.AlertsLost != 10 || p.AlertsGained != 0 {
		t.Fatalf("pair %+v: want aaaa -> bbbb, 50 events, 10 alerts lost", p)
	}
	if d := p.DiffQuantiles[0]; d < 0.099 || d > 0.101 {
		t.Fatalf("median |diff| %v, want 0.1", d)
	}
	// A same-version difference is still a mismatch.
	c := writePredictions(t, 100, func(off int) (string, float32) { return "aaaa", float32(off)/100 + 0.001 })
	rep, err = Verify(context.Background(), topics.ClientConfig{}, "file:"+a, "file:"+c, Options{Threshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Mismatches != 100 {
		t.Fatalf("same version, other scores: %+v, want 100 mismatches", rep)
	}
}
