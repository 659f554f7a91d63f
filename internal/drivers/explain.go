package drivers

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// ExplainOptions say which row `streamscore explain` explains: the record at Topic /
// Partition / Offset, or (Topic empty) the JSON on the reader.
type ExplainOptions struct {
	Topic     string
	Partition int32
	Offset    int64
}

// errNoFeatures says what explain can read.
var errNoFeatures = errors.New(`the record has no "features": explain reads a prediction written with include_features: true, a golden row {"features":[...]}, or the features as a JSON array (an event's windowed features need its history: replay it with backfill and include_features)`)

// Explain prints the features of one row, its score (from ONNX Runtime and from the
// trees) and the TreeSHAP contribution of every feature, largest |contribution| first,
// for model.path (with the covers of its metadata or covers.json beside it).
func Explain(ctx context.Context, cc *config.Compiled, in io.Reader, o ExplainOptions, out io.Writer) error {
	raw, err := explainInput(ctx, cc, in, o)
	if err != nil {
		return err
	}
	x, err := featuresOf(raw, cc.Features.Len())
	if err != nil {
		return err
	}
	m, err := scorer.Open(cc.ModelOptions())
	if err != nil {
		return err
	}
	defer m.Close()
	if why := m.ExplainStatus(); why != "" {
		return fmt.Errorf("%s@%s cannot be explained: %s", m.Name(), m.Version(), why)
	}
	scores := make([]float32, 1)
	if _, err := m.Score(x, 1, scores, nil); err != nil {
		return err
	}
	phi := make([]float64, len(x))
	base, err := m.Explain(x, phi)
	if err != nil {
		return err
	}
	names := cc.Features.Names()
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(math.Abs(phi[b]), math.Abs(phi[a])) })
	sum := base
	for _, p := range phi {
		sum += p
	}
	fmt.Fprintf(out, "model %s@%s\nscore %v (base value %.6g + contributions %.6g = %.9g)\n\n", m.Name(), m.Version(), scores[0], base, sum-base, sum)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "FEATURE\tVALUE\tCONTRIBUTION\t")
	for _, i := range order {
		fmt.Fprintf(w, "%s\t%v\t%+.6f\t\n", names[i], x[i], phi[i])
	}
	return w.Flush()
}

// explainInput is the JSON of the row: the record at o's position, or the reader's.
func explainInput(ctx context.Context, cc *config.Compiled, in io.Reader, o ExplainOptions) ([]byte, error) {
	if o.Topic == "" {
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, fmt.Errorf("reading the row from stdin: %w", err)
		}
		return b, nil
	}
	var found []byte
	err := topics.ReadToEnd(ctx, cc.Kafka, []string{o.Topic}, func(recs []record.Record) error {
		for _, r := range recs {
			if r.Partition == o.Partition && r.Offset == o.Offset {
				found = r.Value
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%s/%d has no record at offset %d", o.Topic, o.Partition, o.Offset)
	}
	return found, nil
}

// featuresOf reads {"features":[...]} or a bare array of width numbers.
func featuresOf(raw []byte, width int) ([]float32, error) {
	var row struct {
		Features []float32 `json:"features"`
	}
	var x []float32
	if err := json.Unmarshal(raw, &x); err != nil {
		if err := json.Unmarshal(raw, &row); err != nil {
			return nil, fmt.Errorf("reading the row: %w", err)
		}
		x = row.Features
	}
	if x == nil {
		return nil, errNoFeatures
	}
	if len(x) != width {
		return nil, fmt.Errorf("the row has %d features, the feature spec %d", len(x), width)
	}
	return x, nil
}
