// Package onnxtest builds small ONNX models in pure Go, for tests of model loading,
// validation and the model registry: a well-behaved logistic model, models that fail each
// validation check (NaN scores, scores outside [0, 1], scores that depend on the batch),
// a model larger than any Kafka record, and bytes that are not a model at all.
//
// It encodes the ModelProto protobuf by hand with protowire rather than importing
// generated ONNX bindings or calling Python: the test models then need nothing but the Go
// toolchain, and the few messages they use are small. Field numbers are those of
// onnx/onnx.proto (IR version 8, default-domain opset 13, which every ONNX Runtime 1.x of
// the last years loads). Every model has one float input "input" [N, width] with a
// symbolic batch dimension and one float output "probabilities" [N, 1], the signature
// scorer.Open expects of a tabular model.
package onnxtest

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

const (
	irVersion = 8
	opset     = 13

	// TensorProto.DataType FLOAT.
	dtFloat = 1
	// AttributeProto.AttributeType INTS and INT.
	attrInt  = 2
	attrInts = 7

	// InputName is the name of every model's input.
	InputName = "input"
	// OutputName is the name of every model's output.
	OutputName = "probabilities"
)

// Logistic is score = Sigmoid(x·weights + bias): the reference well-behaved model, whose
// scores are finite, in [0, 1] and independent of the batch. len(weights) must be width.
func Logistic(width int, weights []float32, bias float32) []byte {
	g := graph{name: "logistic", width: width}
	g.init("W", []int64{int64(width), 1}, weights)
	g.init("B", []int64{1}, []float32{bias})
	g.node("MatMul", []string{InputName, "W"}, "z")
	g.node("Add", []string{"z", "B"}, "logit")
	g.node("Sigmoid", []string{"logit"}, OutputName)
	return g.model()
}

// NaNOutput scores NaN for every row: x·0 / x·0 is 0/0.
func NaNOutput(width int) []byte {
	g := graph{name: "nan", width: width}
	g.init("W", []int64{int64(width), 1}, make([]float32, width))
	g.node("MatMul", []string{InputName, "W"}, "zero")
	g.node("Div", []string{"zero", "zero"}, OutputName)
	return g.model()
}

// BatchDependent scores Sigmoid(z - mean(z)) with z = x·1 and the mean taken over the
// batch (ReduceMean on axis 0): a row's score depends on the rows scored with it, so
// batches of 1 (always 0.5), 7 and 256 disagree. Batch normalisation left in training
// mode is how real models end up like this.
func BatchDependent(width int) []byte {
	g := graph{name: "batch_dependent", width: width}
	g.init("W", []int64{int64(width), 1}, ones(width))
	g.node("MatMul", []string{InputName, "W"}, "z")
	g.nodeAttrs("ReduceMean", []string{"z"}, "mean", attrIntsField("axes", 0), attrIntField("keepdims", 1))
	g.node("Sub", []string{"z", "mean"}, "centered")
	g.node("Sigmoid", []string{"centered"}, OutputName)
	return g.model()
}

// OutOfRange scores x·1 + 1.5 without squashing, a regression or raw-logit model exported
// as if it were a classifier: scores of non-negative rows are at least 1.5.
func OutOfRange(width int) []byte {
	g := graph{name: "out_of_range", width: width}
	g.init("W", []int64{int64(width), 1}, ones(width))
	g.init("B", []int64{1}, []float32{1.5})
	g.node("MatMul", []string{InputName, "W"}, "z")
	g.node("Add", []string{"z", "B"}, OutputName)
	return g.model()
}

// Padded is Logistic(width, 0.1…, -1) carrying an initializer no node reads, sized so
// that the file is larger than extraBytes. Its content is pseudo-random (a fixed seed, so
// the model and its version are the same in every run) so that compression on the way to
// Kafka cannot shrink it back under one record: it stands in for a large forest.
func Padded(width, extraBytes int) []byte {
	g := graph{name: "padded", width: width}
	w := make([]float32, width)
	for i := range w {
		w[i] = 0.1
	}
	g.init("W", []int64{int64(width), 1}, w)
	g.init("B", []int64{1}, []float32{-1})
	n := extraBytes/4 + 1
	pad := make([]byte, 4*n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < n; i++ {
		// xorshift64*, kept finite so no reader trips over NaN bits.
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		f := float32(x*0x2545f4914f6cdd1d>>40) / (1 << 24)
		binary.LittleEndian.PutUint32(pad[4*i:], math.Float32bits(f))
	}
	g.inits = append(g.inits, tensorRaw("unused_padding", []int64{int64(n)}, pad))
	g.node("MatMul", []string{InputName, "W"}, "z")
	g.node("Add", []string{"z", "B"}, "logit")
	g.node("Sigmoid", []string{"logit"}, OutputName)
	return g.model()
}

// Corrupt is not a protobuf message: its first byte is a field tag with wire type 7,
// which no protobuf parser accepts, so ONNX Runtime must refuse it.
func Corrupt() []byte {
	return append([]byte{0x0f}, "this is not an ONNX model"...)
}

func ones(n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// graph accumulates the encoded parts of a GraphProto.
type graph struct {
	name  string
	width int
	nodes [][]byte
	inits [][]byte
}

func (g *graph) init(name string, dims []int64, vals []float32) {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	g.inits = append(g.inits, tensorRaw(name, dims, raw))
}

func (g *graph) node(op string, inputs []string, output string) {
	g.nodeAttrs(op, inputs, output)
}

// nodeAttrs encodes a NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
func (g *graph) nodeAttrs(op string, inputs []string, output string, attrs ...[]byte) {
	var b []byte
	for _, in := range inputs {
		b = appendString(b, 1, in)
	}
	b = appendString(b, 2, output)
	b = appendString(b, 3, output+"_"+op)
	b = appendString(b, 4, op)
	for _, a := range attrs {
		b = appendMessage(b, 5, a)
	}
	g.nodes = append(g.nodes, b)
}

// model encodes the ModelProto: ir_version 1, producer_name 2, graph 7, opset_import 8.
// The GraphProto holds node 1, name 2, initializer 5, input 11, output 12.
func (g *graph) model() []byte {
	var gb []byte
	for _, n := range g.nodes {
		gb = appendMessage(gb, 1, n)
	}
	gb = appendString(gb, 2, g.name)
	for _, t := range g.inits {
		gb = appendMessage(gb, 5, t)
	}
	gb = appendMessage(gb, 11, valueInfo(InputName, int64(g.width)))
	gb = appendMessage(gb, 12, valueInfo(OutputName, 1))

	var opsetID []byte // OperatorSetIdProto: domain 1 (empty: ai.onnx), version 2
	opsetID = protowire.AppendTag(opsetID, 2, protowire.VarintType)
	opsetID = protowire.AppendVarint(opsetID, opset)

	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType)
	m = protowire.AppendVarint(m, irVersion)
	m = appendString(m, 2, "streamscore-onnxtest")
	m = appendMessage(m, 7, gb)
	m = appendMessage(m, 8, opsetID)
	return m
}

// tensorRaw encodes a float TensorProto: dims 1, data_type 2, name 8, raw_data 9
// (little-endian IEEE 754, as the spec requires of raw_data).
func tensorRaw(name string, dims []int64, raw []byte) []byte {
	var b []byte
	for _, d := range dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, dtFloat)
	b = appendString(b, 8, name)
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	return b
}

// valueInfo encodes a ValueInfoProto (name 1, type 2) of a float tensor [N, cols]:
// TypeProto.tensor_type 1 → Tensor{elem_type 1, shape 2} → TensorShapeProto.dim 1 →
// Dimension{dim_value 1 | dim_param 2}.
func valueInfo(name string, cols int64) []byte {
	var batch, fixed []byte
	batch = appendString(batch, 2, "N")
	fixed = protowire.AppendTag(fixed, 1, protowire.VarintType)
	fixed = protowire.AppendVarint(fixed, uint64(cols))
	var shape []byte
	shape = appendMessage(shape, 1, batch)
	shape = appendMessage(shape, 1, fixed)
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, dtFloat)
	tensor = appendMessage(tensor, 2, shape)
	var typ []byte
	typ = appendMessage(typ, 1, tensor)
	var b []byte
	b = appendString(b, 1, name)
	b = appendMessage(b, 2, typ)
	return b
}

// attrIntsField and attrIntField encode AttributeProto: name 1, i 3, ints 8, type 20.
func attrIntsField(name string, vals ...int64) []byte {
	var b []byte
	b = appendString(b, 1, name)
	for _, v := range vals {
		b = protowire.AppendTag(b, 8, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v))
	}
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	b = protowire.AppendVarint(b, attrInts)
	return b
}

func attrIntField(name string, v int64) []byte {
	var b []byte
	b = appendString(b, 1, name)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(v))
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	b = protowire.AppendVarint(b, attrInt)
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}
