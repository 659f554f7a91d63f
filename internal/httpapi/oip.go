package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/streamscore/streamscore/pipeline"
)

// The Open Inference Protocol v2, REST form (the protocol of Triton, KServe and Seldon):
// health, server and model metadata, and inference with JSON tensors. The model has one
// FP32 input [-1, width] and one FP32 output [-1, 1], the score.

func (s *Server) live(w http.ResponseWriter, _ *http.Request) outcome {
	return writeRaw(w, http.StatusOK, []byte(`{"live":true}`))
}

func (s *Server) isReady() bool { return !s.draining.Load() && s.d.Ready() }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) outcome {
	if !s.isReady() {
		return writeError(w, r, http.StatusServiceUnavailable, classNotReady, "not ready: the consumer group has not joined yet, or the job is stopping")
	}
	return writeRaw(w, http.StatusOK, []byte(`{"ready":true}`))
}

func (s *Server) serverMetadata(w http.ResponseWriter, _ *http.Request) outcome {
	return writeJSON(w, http.StatusOK, map[string]any{"name": "streamscore", "version": "v2", "extensions": []string{}})
}

// model resolves {name} and {version} against the live model, or writes a 404.
func (s *Server) model(w http.ResponseWriter, r *http.Request) (pipeline.Scorer, outcome, bool) {
	m := s.d.Scorer.Live()
	name, version := r.PathValue("name"), r.PathValue("version")
	if name != m.Name() {
		return nil, writeError(w, r, http.StatusNotFound, classNotFound, fmt.Sprintf("model %q is not served here: the model is %q", name, m.Name())), false
	}
	if version != "" && version != m.Version() {
		return nil, writeError(w, r, http.StatusNotFound, classNotFound,
			fmt.Sprintf("model %s version %q is not live: the live version is %s", name, version, m.Version())), false
	}
	return m, outcome{}, true
}

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request) outcome {
	m, out, ok := s.model(w, r)
	if !ok {
		return out
	}
	type tensor struct {
		Name     string `json:"name"`
		Datatype string `json:"datatype"`
		Shape    []int  `json:"shape"`
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"name": m.Name(), "versions": []string{m.Version()}, "platform": "onnxruntime_onnx",
		"inputs":  []tensor{{s.d.InputName, "FP32", []int{-1, s.d.Scorer.NumFeatures()}}},
		"outputs": []tensor{{s.d.OutputName, "FP32", []int{-1, 1}}},
	})
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) outcome {
	if _, out, ok := s.model(w, r); !ok {
		return out
	}
	return s.ready(w, r)
}

// inferRequest is an OIP inference request. Data may be flat (row-major) or nested.
type inferRequest struct {
	ID     string `json:"id"`
	Inputs []struct {
		Name     string          `json:"name"`
		Shape    []int64         `json:"shape"`
		Datatype string          `json:"datatype"`
		Data     json.RawMessage `json:"data"`
	} `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs"`
	Parameters struct {
		// Explain adds the "contributions" output (explain.go).
		Explain bool `json:"explain"`
	} `json:"parameters"`
}

// rows checks the request's one input tensor and returns its values and row count.
func (s *Server) rows(req *inferRequest) ([]float32, int, error) {
	width := s.d.Scorer.NumFeatures()
	if len(req.Inputs) != 1 {
		return nil, 0, fmt.Errorf("%d input tensors: send one, %q", len(req.Inputs), s.d.InputName)
	}
	in := req.Inputs[0]
	switch {
	case in.Name != s.d.InputName:
		return nil, 0, fmt.Errorf("input %q: the model's input is %q", in.Name, s.d.InputName)
	case in.Datatype != "FP32":
		return nil, 0, fmt.Errorf("input datatype %q: want FP32", in.Datatype)
	case len(in.Shape) != 2 || in.Shape[1] != int64(width) || in.Shape[0] < 1:
		return nil, 0, fmt.Errorf("input shape %v: want [rows, %d] with at least one row", in.Shape, width)
	}
	for _, o := range req.Outputs {
		if o.Name != s.d.OutputName && (o.Name != ContributionsOutput || !req.Parameters.Explain) {
			return nil, 0, fmt.Errorf("output %q: the model's output is %q", o.Name, s.d.OutputName)
		}
	}
	n := int(in.Shape[0])
	data, err := flatFloats(in.Data, n*width)
	if err != nil {
		return nil, 0, err
	}
	if len(data) != n*width {
		return nil, 0, fmt.Errorf("%d values for shape %v: want %d", len(data), in.Shape, n*width)
	}
	return data, n, nil
}

// flatFloats reads a flat or nested JSON array of numbers.
func flatFloats(raw json.RawMessage, want int) ([]float32, error) {
	out := make([]float32, 0, want)
	if err := json.Unmarshal(raw, &out); err == nil {
		return out, nil
	}
	var nested []json.RawMessage
	if err := json.Unmarshal(raw, &nested); err != nil {
		return nil, errors.New("input data: want an array of numbers, flat or nested by row")
	}
	out = out[:0]
	for _, r := range nested {
		var row []float32
		if err := json.Unmarshal(r, &row); err != nil {
			return nil, errors.New("input data: want an array of numbers, flat or nested by row")
		}
		out = append(out, row...)
	}
	return out, nil
}

// deadline is the request's deadline: http.request_timeout, or less with ?timeout=.
func (s *Server) deadline(r *http.Request) (context.Context, context.CancelFunc, error) {
	d := s.opt.RequestTimeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		t, err := time.ParseDuration(v)
		if err != nil || t <= 0 {
			return nil, nil, fmt.Errorf("timeout %q: want a duration such as 250ms", v)
		}
		d = min(d, t)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request) outcome {
	if _, out, ok := s.model(w, r); !ok {
		return out
	}
	body, out, ok := s.readBody(w, r)
	if !ok {
		return out
	}
	var req inferRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return writeError(w, r, http.StatusBadRequest, classBadRequest, "request is not an inference request: "+err.Error())
	}
	data, n, err := s.rows(&req)
	if err != nil {
		return writeError(w, r, http.StatusBadRequest, classBadRequest, err.Error())
	}
	ctx, cancel, err := s.deadline(r)
	if err != nil {
		return writeError(w, r, http.StatusBadRequest, classBadRequest, err.Error())
	}
	defer cancel()
	res, err := s.d.Scorer.Infer(ctx, data, n)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return writeError(w, r, http.StatusGatewayTimeout, classTimeout, "not scored within the request's deadline")
	case errors.Is(err, pipeline.ErrVersionChanged):
		return writeError(w, r, http.StatusConflict, classUnavailable, err.Error())
	case err != nil:
		return writeError(w, r, http.StatusServiceUnavailable, classUnavailable, err.Error())
	}
	resp := s.inferResponse(req.ID, res)
	if req.Parameters.Explain {
		var msg string
		if resp, msg = s.withContributions(resp, res, data); msg != "" {
			return writeError(w, r, http.StatusUnprocessableEntity, classBadRequest, msg)
		}
	}
	return writeRaw(w, http.StatusOK, resp)
}

// inferResponse writes each score as the shortest decimal that parses back to the same
// float32, as predictions do: a client recovers the exact bits.
func (s *Server) inferResponse(id string, res pipeline.InferResult) []byte {
	b := bytes.NewBuffer(make([]byte, 0, 128+12*len(res.Scores)))
	b.WriteString(`{"model_name":`)
	b.WriteString(jsonString(res.Model))
	b.WriteString(`,"model_version":`)
	b.WriteString(jsonString(res.Version))
	if id != "" {
		b.WriteString(`,"id":`)
		b.WriteString(jsonString(id))
	}
	b.WriteString(`,"outputs":[{"name":`)
	b.WriteString(jsonString(s.d.OutputName))
	fmt.Fprintf(b, `,"datatype":"FP32","shape":[%d,1],"data":[`, len(res.Scores))
	buf := make([]byte, 0, 24)
	for i, v := range res.Scores {
		if i > 0 {
			b.WriteByte(',')
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			b.WriteString("null") // JSON has no NaN; a model that gives one is broken
			continue
		}
		b.Write(strconv.AppendFloat(buf[:0], float64(v), 'g', -1, 32))
	}
	b.WriteString("]}]}")
	return b.Bytes()
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}
