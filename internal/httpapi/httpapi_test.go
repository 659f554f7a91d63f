package httpapi

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
)

// fakeModel scores a row as the sum of its features.
type fakeModel struct{}

func (fakeModel) Score([]float32, int, []float32, []float32) ([]float32, error) { return nil, nil }
func (fakeModel) NumFeatures() int                                              { return 2 }
func (fakeModel) Name() string                                                  { return "fraud" }
func (fakeModel) Version() string                                               { return "abcd1234" }

type fakeScorer struct{}

func (fakeScorer) Infer(_ context.Context, f []float32, n int) (pipeline.InferResult, error) {
	out := make([]float32, n)
	for i := range n {
		out[i] = f[2*i] + f[2*i+1]
	}
	return pipeline.InferResult{Scores: out, Model: "fraud", Version: "abcd1234"}, nil
}
func (fakeScorer) Live() pipeline.Scorer { return fakeModel{} }
func (fakeScorer) NumFeatures() int      { return 2 }

func newTestServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Options{Address: "127.0.0.1:0", MaxBodyBytes: 256}, Deps{Scorer: fakeScorer{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	return s
}

func do(s *Server, method, path, ct, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	w := httptest.NewRecorder()
	s.routes().ServeHTTP(w, req)
	return w
}

func TestOIPHandlers(t *testing.T) {
	s := newTestServer(t)
	infer := `{"id":"r1","inputs":[{"name":"features","datatype":"FP32","shape":[2,2],"data":[[1,2],[0.5,0.25]]}]}`
	for _, c := range []struct {
		method, path, ct, body string
		code                   int
		has                    string
	}{
		{"GET", "/v2/health/live", "", "", 200, `"live":true`},
		{"GET", "/v2/health/ready", "", "", 200, `"ready":true`},
		{"GET", "/v2", "", "", 200, `"name":"streamscore"`},
		{"GET", "/v2/models/fraud", "", "", 200, `"shape":[-1,2]`},
		{"GET", "/v2/models/fraud/versions/abcd1234", "", "", 200, `"versions":["abcd1234"]`},
		{"GET", "/v2/models/other", "", "", 404, `not served here`},
		{"POST", "/v2/models/fraud/infer", "application/json", infer, 200, `"id":"r1","outputs":[{"name":"score","datatype":"FP32","shape":[2,1],"data":[3,0.75]}]`},
		{"POST", "/v2/models/fraud/versions/0000/infer", "application/json", infer, 404, `the live version is abcd1234`},
		{"POST", "/v2/models/fraud/infer", "text/csv", infer, 415, `send application/json`},
		{"POST", "/v2/models/fraud/infer", "", strings.Repeat(" ", 300), 413, `http.max_body_bytes`},
		{"POST", "/v2/models/fraud/infer", "", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}`, 400, `want [rows, 2]`},
	} {
		w := do(s, c.method, c.path, c.ct, c.body)
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.has) {
			t.Errorf("%s %s: %d %s, want %d with %s", c.method, c.path, w.Code, w.Body, c.code, c.has)
		}
	}
}

type chanFetcher chan []record.Record

func (c chanFetcher) Fetch(ctx context.Context) ([]record.Record, error) {
	select {
	case r := <-c:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestPredictionsBeforeTheWaiter: a prediction read before its request registers (the
// event was scored before its produce was acknowledged to the API) still reaches it, and
// nothing is kept once no produce is in flight.
func TestPredictionsBeforeTheWaiter(t *testing.T) {
	src := make(chanFetcher)
	p := NewPredictions(src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	pred := func(off int64) record.Record {
		return record.Record{Value: []byte(`{"source":{"topic":"tx","partition":2,"offset":` + jsonInt(off) + `},"key":"5","score":0.5}`)}
	}
	finished := p.Expect()
	src <- []record.Record{pred(7), pred(8)}
	src <- nil // the first fetch is dispatched once the second is taken
	ch, stop := p.Wait("tx", 2, 7)
	defer stop()
	finished()
	select {
	case v := <-ch:
		var pr pipeline.Prediction
		if err := json.Unmarshal(v, &pr); err != nil || pr.Source.Offset != 7 {
			t.Fatalf("got %s, %v", v, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the early prediction was not handed to its waiter")
	}
	p.mu.Lock()
	kept := len(p.early)
	p.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d predictions kept with no produce in flight", kept)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestSourceOf(t *testing.T) {
	for v, want := range map[string]position{
		`{"source":{"topic":"transactions","partition":3,"offset":1234},"key":"596"}`: {"transactions", 3, 1234},
		`{"key":"1","source":{"offset":9,"partition":1,"topic":"t"}}`:                 {"t", 1, 9},
	} {
		got, ok := sourceOf([]byte(v))
		if !ok || got != want {
			t.Errorf("%s: %v %v, want %v", v, got, ok, want)
		}
	}
	if _, ok := sourceOf([]byte(`{"marker":1}`)); ok {
		t.Error("a record without a source was read as a prediction")
	}
}
