package scorer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// OpenBytes loads a model from the bytes of an .onnx file and validates its signature. It
// exists for models that never touch a disk: the registry keeps them in Kafka, and an
// instance loads the version an activation names straight from the bytes it read. o.Path
// is not read; when set, it names the model in errors. The version is the first 8 hex
// digits of the bytes' SHA-256, as with Open, so the same file has the same version
// whichever way it was loaded.
func OpenBytes(raw []byte, o Options) (*Model, error) {
	if len(raw) == 0 {
		return nil, errors.New("model is empty (0 bytes)")
	}
	if err := initRuntime(); err != nil {
		return nil, err
	}
	m := &Model{name: o.Name, version: Version(raw), device: o.Device}
	if m.name == "" {
		m.name = "model"
	}
	if m.device == "" {
		m.device = CPU
	}
	what := o.Path
	if what == "" {
		what = m.name + "@" + m.version
	}

	ins, outs, err := ort.GetInputOutputInfoWithONNXData(raw)
	if err != nil {
		return nil, fmt.Errorf("reading model signature of %s (is it an ONNX model?): %w", what, err)
	}
	in, err := pickIO(ins, o.InputName, "", "input")
	if err != nil {
		return nil, err
	}
	out, err := pickIO(outs, o.OutputName, "probabilities", "output")
	if err != nil {
		return nil, err
	}
	if in.DataType != ort.TensorElementDataTypeFloat || len(in.Dimensions) != 2 || in.Dimensions[1] <= 0 {
		return nil, fmt.Errorf("model input %s: want a float tensor [N, F] with fixed F, got %s", in.Name, in.String())
	}
	if out.DataType != ort.TensorElementDataTypeFloat || len(out.Dimensions) < 1 || len(out.Dimensions) > 2 {
		return nil, fmt.Errorf("model output %s: want a float tensor [N] or [N, C], got %s (export classifiers with zipmap disabled)", out.Name, out.String())
	}
	if err := m.setShape(o, in, out); err != nil {
		return nil, err
	}
	so, err := newSessionOptions(o, m.device)
	if err != nil {
		return nil, err
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(raw, []string{in.Name}, []string{out.Name}, so)
	if derr := so.Destroy(); derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("creating ONNX Runtime session for %s: %w", what, err)
	}
	m.sess = sess
	m.readTrees(raw)
	return m, nil
}

// Version is the version of a model file: the first 8 hex digits of its SHA-256, the same
// whether it is loaded from a file, from bytes, or looked up in the registry.
func Version(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:4])
}
