package treeshap

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The field numbers of onnx.proto this package reads (ModelProto, GraphProto, NodeProto,
// AttributeProto, StringStringEntryProto). Walking the wire format with protowire keeps
// the package free of generated code for a schema of which it needs a dozen fields.
const (
	modelGraph         = 7
	modelMetadataProps = 14
	graphNode          = 1
	nodeOpType         = 4
	nodeAttribute      = 5
	nodeDomain         = 7
	attrName           = 1
	attrF              = 2
	attrI              = 3
	attrS              = 4
	attrT              = 5
	attrFloats         = 7
	attrInts           = 8
	attrStrings        = 9
	entryKey           = 1
	entryValue         = 2
)

// onnxNode is one node of a model's graph with the attributes this package reads.
type onnxNode struct {
	opType, domain string
	ints           map[string][]int64
	floats         map[string][]float32
	strings        map[string][][]byte
	str            map[string][]byte
	tensors        map[string]bool // attributes given as tensors (the *_as_tensor forms)
}

// onnxModel is the part of a model file this package reads.
type onnxModel struct {
	nodes    []onnxNode
	metadata map[string]string
}

var errTruncated = errors.New("truncated protobuf")

// eachField calls fn for every field of the message b.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var f uint32
			f, n = protowire.ConsumeFixed32(b)
			x = uint64(f)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// parseONNX reads the graph's nodes and the metadata_props of an ONNX model file.
func parseONNX(raw []byte) (*onnxModel, error) {
	m := &onnxModel{metadata: map[string]string{}}
	err := eachField(raw, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case modelGraph:
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != graphNode || typ != protowire.BytesType {
					return nil
				}
				n, err := parseNode(v)
				if err != nil {
					return err
				}
				m.nodes = append(m.nodes, n)
				return nil
			})
		case modelMetadataProps:
			var k, val string
			err := eachField(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				switch num {
				case entryKey:
					k = string(v)
				case entryValue:
					val = string(v)
				}
				return nil
			})
			m.metadata[k] = val
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the ONNX model: %w", err)
	}
	return m, nil
}

func parseNode(b []byte) (onnxNode, error) {
	n := onnxNode{ints: map[string][]int64{}, floats: map[string][]float32{}, strings: map[string][][]byte{},
		str: map[string][]byte{}, tensors: map[string]bool{}}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case nodeOpType:
			n.opType = string(v)
		case nodeDomain:
			n.domain = string(v)
		case nodeAttribute:
			if typ == protowire.BytesType {
				return parseAttribute(v, &n)
			}
		}
		return nil
	})
	return n, err
}

// parseAttribute reads one AttributeProto into n; repeated numbers may be packed or not.
func parseAttribute(b []byte, n *onnxNode) error {
	var name string
	var ints []int64
	var floats []float32
	var strs [][]byte
	var s []byte
	tensor := false
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case attrName:
			name = string(v)
		case attrI:
			ints = append(ints, int64(x))
		case attrF:
			floats = append(floats, math.Float32frombits(uint32(x)))
		case attrS:
			s = v
		case attrT:
			tensor = true
		case attrStrings:
			strs = append(strs, v)
		case attrInts:
			return appendInts(&ints, typ, v, x)
		case attrFloats:
			return appendFloats(&floats, typ, v, x)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case tensor:
		n.tensors[name] = true
	case s != nil:
		n.str[name] = s
	case strs != nil:
		n.strings[name] = strs
	case floats != nil:
		n.floats[name] = floats
	case ints != nil:
		n.ints[name] = ints
	}
	return nil
}

// appendInts appends one repeated-int64 field, packed or not.
func appendInts(ints *[]int64, typ protowire.Type, v []byte, x uint64) error {
	if typ != protowire.BytesType {
		*ints = append(*ints, int64(x))
		return nil
	}
	for len(v) > 0 {
		x, k := protowire.ConsumeVarint(v)
		if k < 0 {
			return errTruncated
		}
		*ints, v = append(*ints, int64(x)), v[k:]
	}
	return nil
}

// appendFloats appends one repeated-float field, packed or not.
func appendFloats(floats *[]float32, typ protowire.Type, v []byte, x uint64) error {
	if typ != protowire.BytesType {
		*floats = append(*floats, math.Float32frombits(uint32(x)))
		return nil
	}
	for len(v) > 0 {
		x, k := protowire.ConsumeFixed32(v)
		if k < 0 {
			return errTruncated
		}
		*floats, v = append(*floats, math.Float32frombits(x)), v[k:]
	}
	return nil
}
