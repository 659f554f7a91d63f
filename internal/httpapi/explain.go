package httpapi

import (
	"fmt"
	"strconv"

	"github.com/streamscore/streamscore/pipeline"
)

// ContributionsOutput is the output an OIP inference request with
// "parameters":{"explain":true} gets beside the scores: FP64 [rows, features+1], each
// row's TreeSHAP contribution of every feature in input order, then its base value (the
// layout of XGBoost's pred_contribs): a row's values add up to its score.
const ContributionsOutput = "contributions"

// withContributions appends the contributions output to the inference response resp,
// explaining each row with the version that scored it; the message says why not when
// that version cannot explain.
func (s *Server) withContributions(resp []byte, res pipeline.InferResult, data []float32) ([]byte, string) {
	ex, ok := res.Scorer.(pipeline.Explainer)
	if !ok {
		return nil, fmt.Sprintf("%s@%s cannot explain its scores: only tree ensembles with node covers do", res.Model, res.Version)
	}
	if why := ex.ExplainStatus(); why != "" {
		return nil, fmt.Sprintf("%s@%s cannot explain its scores: %s", res.Model, res.Version, why)
	}
	n, f := len(res.Scores), len(data)/max(len(res.Scores), 1)
	phi := make([]float64, f)
	out := resp[:len(resp)-2] // the outputs array's and the response's closing brackets
	out = append(out, `,{"name":"`+ContributionsOutput+`","datatype":"FP64","shape":[`...)
	out = strconv.AppendInt(out, int64(n), 10)
	out = append(out, ',')
	out = strconv.AppendInt(out, int64(f+1), 10)
	out = append(out, `],"data":[`...)
	for i := range n {
		base, err := ex.Explain(data[i*f:(i+1)*f], phi)
		if err != nil {
			return nil, fmt.Sprintf("explaining row %d: %v", i, err)
		}
		for j, v := range append(phi, base) {
			if i > 0 || j > 0 {
				out = append(out, ',')
			}
			out = strconv.AppendFloat(out, v, 'g', -1, 64)
		}
	}
	return append(out, "]}]}"...), ""
}
