package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamscore/streamscore/topics"
)

// The skew audit compares the explanation of alerting rows bit for bit.
func TestVerifyComparesReasons(t *testing.T) {
	line := func(contribution string) string {
		return `{"source":{"topic":"in","partition":0,"offset":0},"key":"1","score":0.9,"model":{"name":"fraud","version":"aaaa"},"event_time":"2018-04-01T00:00:00Z","scored_at":"2026-01-01T00:00:00Z","base_value":0.01,"reasons":[{"feature":"A","value":1.5,"contribution":` + contribution + `}],"other_contribution":0.09}` + "\n"
	}
	write := func(lines ...string) string {
		path := filepath.Join(t.TempDir(), "p.jsonl")
		if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		return "file:" + path
	}
	a := write(line("0.8"))
	for _, c := range []struct {
		b    string
		want int64
	}{
		{write(line("0.8")), 0},
		{write(line("0.8000000000000002")), 1}, // one ulp
		{write(strings.Replace(line("0.8"), `,"base_value":0.01,"reasons":[{"feature":"A","value":1.5,"contribution":0.8}],"other_contribution":0.09`, "", 1)), 1},
	} {
		rep, err := Verify(context.Background(), topics.ClientConfig{}, a, c.b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Joined != 1 || rep.ReasonMismatches != c.want || rep.OK() != (c.want == 0) {
			t.Fatalf("%s: %+v, want %d reason mismatches", c.b, rep, c.want)
		}
	}
}
