//go:build !integration

package drivers

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
)

// TestExperimentReportOnEmbeddedBroker runs the report and its acceptance check on
// predictions in the contract's format, on the embedded broker; the integration tier runs
// the same on Apache Kafka.
func TestExperimentReportOnEmbeddedBroker(t *testing.T) {
	c := testConfig(t, embeddedBroker(t))
	produceExperimentOutputs(t, c, "exp24", 3000)
	rep := checkExperimentReport(t, c, "exp24")
	if len(rep.Arms) != 2 || rep.Duplicates != 300 || rep.Arms[0].Events+rep.Arms[1].Events != 3000 {
		t.Fatalf("report %+v", rep)
	}
	cc, err := c.Validate(config.Needs{Kafka: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = ExperimentReport(ctx, cc, "exp-typo", zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err == nil || !strings.Contains(err.Error(), `experiment "exp-typo"`) || !strings.Contains(err.Error(), "exp24, other") {
		t.Fatalf("an unknown experiment: %v", err)
	}
}
