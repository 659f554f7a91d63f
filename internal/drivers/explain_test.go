//go:build !integration

package drivers

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/streamscore/streamscore/internal/config"
)

// `streamscore explain` on a golden row prints ONNX Runtime's score, the base value and a
// contribution for every feature; a row without features says what it needs.
func TestExplainPrintsEveryContribution(t *testing.T) {
	c, err := config.Load("../../streamscore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Validate(config.Needs{Model: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../testdata/model/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	var out strings.Builder
	if err := Explain(context.Background(), cc, strings.NewReader(first), ExplainOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "score 0.59999996 (base value 0.00848719") {
		t.Fatalf("no score or base value:\n%s", got)
	}
	for _, name := range cc.Features.Names() {
		if !strings.Contains(got, name) {
			t.Fatalf("no line for %s:\n%s", name, got)
		}
	}
	err = Explain(context.Background(), cc, strings.NewReader(`{"transaction_id":1}`), ExplainOptions{}, &out)
	if err == nil || !strings.Contains(err.Error(), "include_features") {
		t.Fatalf("an event without features: %v", err)
	}
}
