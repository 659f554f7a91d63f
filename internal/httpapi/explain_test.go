package httpapi

import (
	"context"
	"strings"
	"testing"

	"github.com/streamscore/streamscore/pipeline"
)

// explainModel is fakeModel explained: each feature contributes its value, on base 0.25
// (so the contributions of a row and its base add up to its score + 0.25 — what the
// server writes is checked, not the arithmetic of a real model).
type explainModel struct{ fakeModel }

func (explainModel) ExplainStatus() string { return "" }
func (explainModel) Explain(x []float32, phi []float64) (float64, error) {
	for i, v := range x {
		phi[i] = float64(v)
	}
	return 0.25, nil
}

// explainScorer scores as fakeScorer, with a scorer that explains or, with why, does not.
type explainScorer struct {
	fakeScorer
	why string
}

type noExplainModel struct {
	fakeModel
	why string
}

func (m noExplainModel) ExplainStatus() string                       { return m.why }
func (noExplainModel) Explain([]float32, []float64) (float64, error) { panic("not asked") }

func (e explainScorer) Infer(ctx context.Context, f []float32, n int) (pipeline.InferResult, error) {
	res, err := e.fakeScorer.Infer(ctx, f, n)
	res.Scorer = explainModel{}
	if e.why != "" {
		res.Scorer = noExplainModel{why: e.why}
	}
	return res, err
}

func TestOIPExplain(t *testing.T) {
	body := `{"inputs":[{"name":"features","datatype":"FP32","shape":[2,2],"data":[[1,2],[0.5,0.25]]}],"parameters":{"explain":true}}`
	s, err := New(Options{Address: "127.0.0.1:0", MaxBodyBytes: 256}, Deps{Scorer: explainScorer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	w := do(s, "POST", "/v2/models/fraud/infer", "application/json", body)
	want := `"outputs":[{"name":"score","datatype":"FP32","shape":[2,1],"data":[3,0.75]},{"name":"contributions","datatype":"FP64","shape":[2,3],"data":[1,2,0.25,0.5,0.25,0.25]}]}`
	if w.Code != 200 || !strings.HasSuffix(w.Body.String(), want) {
		t.Fatalf("%d %s\nwant the suffix %s", w.Code, w.Body, want)
	}
	// Without the parameter: the scores alone.
	w = do(s, "POST", "/v2/models/fraud/infer", "application/json", strings.Replace(body, "true", "false", 1))
	if w.Code != 200 || strings.Contains(w.Body.String(), "contributions") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for _, sc := range []Scorer{fakeScorer{}, explainScorer{why: "the model has no node covers"}} {
		s, err := New(Options{Address: "127.0.0.1:0", MaxBodyBytes: 256}, Deps{Scorer: sc})
		if err != nil {
			t.Fatal(err)
		}
		w := do(s, "POST", "/v2/models/fraud/infer", "application/json", body)
		s.ln.Close()
		if w.Code != 422 || !strings.Contains(w.Body.String(), "cannot explain its scores") {
			t.Fatalf("%T: %d %s, want 422 saying why", sc, w.Code, w.Body)
		}
	}
}
