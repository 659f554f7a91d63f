package scorer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Device selects the execution provider.
type Device string

// The devices a model can run on.
const (
	CPU  Device = "cpu"  // ONNX Runtime's default CPU execution provider
	CUDA Device = "cuda" // the CUDA execution provider (the GPU build of ONNX Runtime)
)

// ErrNoCUDA is returned by Open when device cuda is asked for and the loaded ONNX Runtime
// library has no usable CUDA execution provider.
var ErrNoCUDA = errors.New("CUDA execution provider unavailable")

// Options configures a Model. The zero value of every field but Path has a sensible default.
type Options struct {
	Path        string // the .onnx file
	Name        string // model name in predictions; defaults to the file name without extension
	Device      Device // cpu (default) or cuda
	CUDADevice  int    // GPU ordinal for cuda
	Threads     int    // intra-op threads; default 1, which keeps scores independent of batch size
	InputName   string // defaults to the model's only input
	OutputName  string // defaults to "probabilities" when present, else the model's first output
	ScoreColumn int    // column of a [N,C] output holding the score; default the last column
}

// Model is one ONNX Runtime session of a tabular model with a single float input [N, F]
// and a float output [N] or [N, C] from which one column is the score.
//
// Score is safe for concurrent use (ONNX Runtime sessions are), but the pipeline calls it
// from one goroutine: with Threads=1 a single call per batch gives scores that do not
// depend on how rows were batched.
type Model struct {
	sess      *ort.DynamicAdvancedSession
	name      string
	version   string
	nFeatures int
	cols      int // columns of the output; 1 for [N] or [N,1]
	outRank   int
	scoreCol  int
	device    Device
	explain   explanation
	closeOnce sync.Once
}

// Open reads the model file and loads it with OpenBytes; the model's name defaults to the
// file name without its extension.
func Open(o Options) (*Model, error) {
	if o.Path == "" {
		return nil, errors.New("model path is empty")
	}
	raw, err := os.ReadFile(o.Path)
	if err != nil {
		return nil, fmt.Errorf("reading model: %w", err)
	}
	if o.Name == "" {
		o.Name = strings.TrimSuffix(filepath.Base(o.Path), filepath.Ext(o.Path))
	}
	m, err := OpenBytes(raw, o)
	if err != nil {
		return nil, err
	}
	if err := m.coversBeside(o.Path); err != nil {
		return nil, errors.Join(err, m.Close())
	}
	return m, nil
}

// setShape records the input width and the output's columns, and picks the score column.
func (m *Model) setShape(o Options, in, out ort.InputOutputInfo) error {
	m.nFeatures = int(in.Dimensions[1])
	m.cols = 1
	m.outRank = len(out.Dimensions)
	if len(out.Dimensions) == 2 {
		m.cols = int(out.Dimensions[1])
	}
	if m.cols <= 0 {
		return fmt.Errorf("model output %s has an unknown column count: %s", out.Name, out.String())
	}
	m.scoreCol = m.cols - 1
	if o.ScoreColumn != 0 {
		m.scoreCol = o.ScoreColumn
	}
	if m.scoreCol < 0 || m.scoreCol >= m.cols {
		return fmt.Errorf("score column %d is outside the model's %d output columns", o.ScoreColumn, m.cols)
	}
	return nil
}

// newSessionOptions builds the session options for o on device; the caller destroys them.
func newSessionOptions(o Options, device Device) (_ *ort.SessionOptions, err error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("creating session options: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, so.Destroy())
		}
	}()
	threads := o.Threads
	if threads <= 0 {
		threads = 1
	}
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("setting intra-op threads: %w", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("setting inter-op threads: %w", err)
	}
	switch device {
	case CPU:
	case CUDA:
		if err := appendCUDA(so, o.CUDADevice); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("device %q: want cpu or cuda", o.Device)
	}
	return so, nil
}

func appendCUDA(so *ort.SessionOptions, device int) (err error) {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w: %w; device: cuda needs the GPU build of ONNX Runtime 1.29 "+
			"(libonnxruntime.so and libonnxruntime_providers_cuda.so from the onnxruntime-gpu wheel) with CUDA 12 "+
			"and cuDNN 9 on the library path; set device: cpu to score on the CPU", ErrNoCUDA, err)
	}
	defer func() {
		if derr := co.Destroy(); derr != nil && err == nil {
			err = fmt.Errorf("releasing CUDA provider options: %w", derr)
		}
	}()
	if err := co.Update(map[string]string{"device_id": fmt.Sprint(device)}); err != nil {
		return fmt.Errorf("%w: setting device_id=%d: %w", ErrNoCUDA, device, err)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("%w: %w; device: cuda needs the GPU build of ONNX Runtime (onnxruntime-gpu) with CUDA "+
			"and cuDNN installed; set device: cpu to score on the CPU", ErrNoCUDA, err)
	}
	return nil
}

func pickIO(infos []ort.InputOutputInfo, want, preferred, what string) (ort.InputOutputInfo, error) {
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.Name
		if want != "" && in.Name == want {
			return in, nil
		}
	}
	if want != "" {
		return ort.InputOutputInfo{}, fmt.Errorf("model has no %s named %q (it has %v)", what, want, names)
	}
	for _, in := range infos {
		if preferred != "" && in.Name == preferred {
			return in, nil
		}
	}
	if what == "input" && len(infos) != 1 {
		return ort.InputOutputInfo{}, fmt.Errorf("model has %d inputs %v: name the one to feed", len(infos), names)
	}
	if len(infos) == 0 {
		return ort.InputOutputInfo{}, fmt.Errorf("model has no %s", what)
	}
	return infos[0], nil
}

// Name is the model name carried in predictions.
func (m *Model) Name() string { return m.name }

// Version is the first 8 hex digits of the model file's SHA-256: it changes whenever the
// model bytes change, and never otherwise.
func (m *Model) Version() string { return m.version }

// NumFeatures is the width F of the model's input.
func (m *Model) NumFeatures() int { return m.nFeatures }

// Device is the execution provider in use.
func (m *Model) Device() Device { return m.device }

// Score runs the model on n rows held row-major in features (len n*F) and writes the n
// scores into out (len >= n). scratch is reused between calls to hold the raw output; pass
// the value returned by the previous call, or nil.
func (m *Model) Score(features []float32, n int, out []float32, scratch []float32) (_ []float32, err error) {
	if n == 0 {
		return scratch, nil
	}
	if len(features) < n*m.nFeatures {
		return scratch, fmt.Errorf("scoring %d rows: %d feature values for %d features per row", n, len(features), m.nFeatures)
	}
	if len(out) < n {
		return scratch, fmt.Errorf("scoring %d rows: output buffer holds %d", n, len(out))
	}
	if cap(scratch) < n*m.cols {
		scratch = make([]float32, n*m.cols)
	}
	scratch = scratch[:n*m.cols]
	in, err := ort.NewTensor(ort.NewShape(int64(n), int64(m.nFeatures)), features[:n*m.nFeatures])
	if err != nil {
		return scratch, fmt.Errorf("building input tensor: %w", err)
	}
	defer destroy(in, "input tensor", &err)
	shape := ort.NewShape(int64(n), int64(m.cols))
	if m.outRank == 1 {
		shape = ort.NewShape(int64(n))
	}
	outT, err := ort.NewTensor(shape, scratch)
	if err != nil {
		return scratch, fmt.Errorf("building output tensor: %w", err)
	}
	defer destroy(outT, "output tensor", &err)
	if err := m.sess.Run([]ort.Value{in}, []ort.Value{outT}); err != nil {
		return scratch, fmt.Errorf("running model %s: %w", m.name, err)
	}
	for i := 0; i < n; i++ {
		out[i] = scratch[i*m.cols+m.scoreCol]
	}
	return scratch, nil
}

// Close releases the session. It must not be called while Score runs.
func (m *Model) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.sess != nil {
			err = m.sess.Destroy()
		}
	})
	return err
}

// destroy releases an ONNX Runtime value when a function returns, reporting a failure to
// release it through *err unless the function failed already.
func destroy(v interface{ Destroy() error }, what string, err *error) {
	if derr := v.Destroy(); derr != nil && *err == nil {
		*err = fmt.Errorf("releasing %s: %w", what, derr)
	}
}
