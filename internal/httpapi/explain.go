package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
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

// HeaderProducer is a Producer that writes record headers (*topics.Producer is one):
// POST /v1/events?explain=true needs it.
type HeaderProducer interface {
	ProduceResultHeaders(topic string, key, value []byte, headers []record.Header, done func(partition int32, offset int64, ts time.Time, err error))
}

// explainHeader asks the operator for the event's explanation whatever its score.
var explainHeader = []record.Header{{Key: pipeline.HeaderExplain, Value: []byte("true")}}

// explainEvent reads ?explain= of POST /v1/events: true writes the event with
// explainHeader, so that its prediction carries its reasons (the operator explains it
// like an alert, and a backfill does the same). The message says what is wrong.
func (s *Server) explainEvent(r *http.Request) (bool, HeaderProducer, string) {
	switch v := r.URL.Query().Get("explain"); v {
	case "", "false":
		return false, nil, ""
	case "true":
		hp, ok := s.d.Events.Producer.(HeaderProducer)
		if !ok {
			return false, nil, "explain=true: this server's producer cannot write headers"
		}
		return true, hp, ""
	default:
		return false, nil, fmt.Sprintf("explain %q: want true or false", v)
	}
}
