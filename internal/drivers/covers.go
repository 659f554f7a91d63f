package drivers

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/lifecycle"
)

// WriteCovers counts the node covers of the tree-ensemble model file at modelPath from
// the training export from (CSV or Parquet) and writes them as JSON to out, for
// `streamscore model covers`. A push picks up covers.json beside the model file.
func WriteCovers(cc *config.Compiled, modelPath, from, out string, log io.Writer) error {
	raw, err := os.ReadFile(modelPath)
	if err != nil {
		return fmt.Errorf("reading the model: %w", err)
	}
	cov, rep, err := lifecycle.CoversFrom(from, raw, lifecycle.ScoreColumn(cc.ModelOptions()), cc.Features.Names())
	if err != nil {
		return err
	}
	b, err := json.Marshal(cov)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the covers: %w", err)
	}
	period := ""
	if rep.Period != "" {
		period = fmt.Sprintf(" in the model's train_period %s (%d rows outside it skipped)", rep.Period, rep.Skipped)
	}
	_, err = fmt.Fprintf(log, "counted %d training rows%s through %d trees of %s@%s; wrote %s\n", rep.Rows, period, len(cov.Trees), modelPath, cov.ModelVersion, out)
	return err
}
