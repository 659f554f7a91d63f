package wireformat

import (
	"fmt"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/streamscore/streamscore/pipeline"
)

// An Avro writer schema is compiled once into a program of avroOps that walks a value
// with hamba/avro's low-level Reader: the fields the plan reads go straight into the
// event's slots, every other field is skipped without being built. No generic maps, no
// reflection on the hot path.

type opKind uint8

const (
	opSkip opKind = iota
	opRecord
	opUnion
	opInt    // int or long into an int field
	opNum    // int or long into a float field
	opFloat  // float into a float field
	opDouble // double into a float field
	opString
	opEnum
	opMillis // timestamp-millis into a time field
	opMicros // timestamp-micros into a time field
	opTimeString
)

type avroOp struct {
	kind     opKind
	slot     int
	typ      avro.Type   // the Avro type read (opInt, opNum: int or long)
	skip     avro.Schema // opSkip
	fields   []avroOp    // opRecord
	branches []avroOp    // opUnion
	symbols  []string    // opEnum
}

// want is a plan field still to be found in a (nested) record.
type want struct {
	slot int
	path []string
	f    *pipeline.Field
}

// compileAvro compiles a writer schema for the plan s. The error is the schema_mismatch
// message saying which field cannot be fed.
func compileAvro(text string, s *pipeline.Schema) (*avroOp, error) {
	sch, err := avro.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("the writer schema is not valid Avro: %w", err)
	}
	rec, ok := sch.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("the writer schema is a %s, want a record", sch.Type())
	}
	wants := make([]want, len(s.Fields))
	for i := range s.Fields {
		wants[i] = want{slot: i, path: strings.Split(s.Fields[i].Name, "."), f: &s.Fields[i]}
	}
	op, err := compileRecord(rec, wants)
	if err != nil {
		return nil, err
	}
	return &op, nil
}

func compileRecord(rec *avro.RecordSchema, wants []want) (avroOp, error) {
	op := avroOp{kind: opRecord, fields: make([]avroOp, len(rec.Fields()))}
	found := make([]bool, len(wants))
	for j, wf := range rec.Fields() {
		var leaf *want
		var nested []want
		for k := range wants {
			w := &wants[k]
			if w.path[0] != wf.Name() {
				continue
			}
			found[k] = true
			if len(w.path) == 1 {
				leaf = w
			} else {
				nested = append(nested, want{slot: w.slot, path: w.path[1:], f: w.f})
			}
		}
		var err error
		switch {
		case leaf != nil:
			op.fields[j], err = compileLeaf(wf.Type(), leaf)
		case nested != nil:
			op.fields[j], err = compileNested(wf.Type(), wf.Name(), nested)
		default:
			op.fields[j] = avroOp{kind: opSkip, skip: wf.Type()}
		}
		if err != nil {
			return avroOp{}, err
		}
	}
	for k, w := range wants {
		if !found[k] && w.f.Required {
			return avroOp{}, fmt.Errorf("field %q is required but the writer schema has no %q", w.f.Name, strings.Join(w.path, "."))
		}
	}
	return op, nil
}

// compileNested compiles a record (or a nullable record) holding nested plan fields.
func compileNested(t avro.Schema, name string, wants []want) (avroOp, error) {
	if u, ok := t.(*avro.UnionSchema); ok {
		return compileUnion(u, func(b avro.Schema) (avroOp, error) { return compileNested(b, name, wants) })
	}
	if r, ok := deref(t).(*avro.RecordSchema); ok {
		return compileRecord(r, wants)
	}
	return avroOp{}, fmt.Errorf("field %q is a %s in the writer schema, want a record holding %q", name, t.Type(), wants[0].f.Name)
}

func compileUnion(u *avro.UnionSchema, branch func(avro.Schema) (avroOp, error)) (avroOp, error) {
	op := avroOp{kind: opUnion, branches: make([]avroOp, len(u.Types()))}
	for i, b := range u.Types() {
		if b.Type() == avro.Null {
			op.branches[i] = avroOp{kind: opSkip, skip: b}
			continue
		}
		var err error
		if op.branches[i], err = branch(b); err != nil {
			return avroOp{}, err
		}
	}
	return op, nil
}

func deref(t avro.Schema) avro.Schema {
	if r, ok := t.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return t
}

// compileLeaf compiles the read of one plan field from a writer field of type t.
func compileLeaf(t avro.Schema, w *want) (avroOp, error) {
	if u, ok := t.(*avro.UnionSchema); ok {
		return compileUnion(u, func(b avro.Schema) (avroOp, error) { return compileLeaf(b, w) })
	}
	t = deref(t)
	logical := ""
	if lt, ok := t.(avro.LogicalTypeSchema); ok && lt.Logical() != nil {
		logical = string(lt.Logical().Type())
	}
	op := avroOp{slot: w.slot, typ: t.Type()}
	op.kind = leafKind(w.f.Type, t.Type(), logical)
	if op.kind == opEnum {
		op.symbols = t.(*avro.EnumSchema).Symbols()
	}
	if op.kind == opSkip {
		desc := string(t.Type())
		if logical != "" {
			desc += " (" + logical + ")"
		}
		return avroOp{}, fmt.Errorf("field %q is a %s in the writer schema, which a %s field cannot read", w.f.Name, desc, w.f.Type)
	}
	return op, nil
}

// leafKind is how a field of type ft reads an Avro value of type at (with its logical
// type); opSkip when it cannot.
func leafKind(ft pipeline.FieldType, at avro.Type, logical string) opKind {
	switch ft {
	case pipeline.TypeInt:
		if at == avro.Int || at == avro.Long {
			return opInt
		}
	case pipeline.TypeFloat:
		switch at {
		case avro.Int, avro.Long:
			return opNum
		case avro.Float:
			return opFloat
		case avro.Double:
			return opDouble
		}
	case pipeline.TypeString:
		switch at {
		case avro.String:
			return opString
		case avro.Enum:
			return opEnum
		}
	case pipeline.TypeTime:
		switch {
		case at == avro.Long && logical == string(avro.TimestampMillis):
			return opMillis
		case at == avro.Long && logical == string(avro.TimestampMicros):
			return opMicros
		case at == avro.String:
			return opTimeString
		}
	}
	return opSkip
}

// run executes op on r, filling ev. It reports a bad value through r.Error, or returns a
// *DecodeError for a value that decodes but cannot be read (a bad time string, an enum
// or union index out of range).
func (op *avroOp) run(r *avro.Reader, ev *pipeline.Event, s *pipeline.Schema) *pipeline.DecodeError {
	switch op.kind {
	case opSkip:
		skipAvro(r, op.skip)
		return nil
	case opRecord:
		for i := range op.fields {
			if err := op.fields[i].run(r, ev, s); err != nil {
				return err
			}
			if r.Error != nil {
				return nil
			}
		}
		return nil
	case opUnion:
		i := r.ReadLong()
		if r.Error != nil {
			return nil
		}
		if i < 0 || i >= int64(len(op.branches)) {
			return pipeline.NewBadValue(pipeline.ClassInvalidAvro, "", "union branch %d of %d", i, len(op.branches))
		}
		return op.branches[i].run(r, ev, s)
	}
	return op.leaf(r, ev, s)
}

func (op *avroOp) leaf(r *avro.Reader, ev *pipeline.Event, s *pipeline.Schema) *pipeline.DecodeError {
	i := op.slot
	switch op.kind {
	case opInt, opNum:
		var n int64
		if op.typ == avro.Int {
			n = int64(r.ReadInt())
		} else {
			n = r.ReadLong()
		}
		ev.Int[i], ev.Num[i] = n, float64(n)
	case opFloat:
		ev.Num[i] = float64(r.ReadFloat())
	case opDouble:
		ev.Num[i] = r.ReadDouble()
	case opString:
		ev.Str[i] = r.ReadString()
	case opEnum:
		k := r.ReadInt()
		if k < 0 || int(k) >= len(op.symbols) {
			return pipeline.NewBadValue(pipeline.ClassInvalidAvro, s.Fields[i].Name, "enum index %d of %d", k, len(op.symbols))
		}
		ev.Str[i] = op.symbols[k]
	case opMillis:
		setTime(ev, i, time.UnixMilli(r.ReadLong()))
	case opMicros:
		setTime(ev, i, time.UnixMicro(r.ReadLong()))
	case opTimeString:
		raw := r.ReadString()
		if r.Error != nil {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return pipeline.NewBadValue(pipeline.ClassWrongType, s.Fields[i].Name, "%q is not an RFC 3339 time", raw)
		}
		setTime(ev, i, t)
	}
	ev.Present |= 1 << uint(i)
	return nil
}

// setTime stores a time as the JSON decoder does: unix nanoseconds and unix seconds.
func setTime(ev *pipeline.Event, i int, t time.Time) {
	ev.Int[i] = t.UnixNano()
	ev.Num[i] = float64(t.Unix())
}

// skipAvro skips one value of schema t.
func skipAvro(r *avro.Reader, t avro.Schema) {
	switch t.Type() {
	case avro.Null:
	case avro.Boolean:
		r.SkipBool()
	case avro.Int, avro.Enum:
		r.SkipInt()
	case avro.Long:
		r.SkipLong()
	case avro.Float:
		r.SkipFloat()
	case avro.Double:
		r.SkipDouble()
	case avro.String:
		r.SkipString()
	case avro.Bytes:
		r.SkipBytes()
	case avro.Fixed:
		r.SkipNBytes(deref(t).(*avro.FixedSchema).Size())
	case avro.Record:
		for _, f := range deref(t).(*avro.RecordSchema).Fields() {
			skipAvro(r, f.Type())
		}
	case avro.Union:
		u := t.(*avro.UnionSchema)
		i := r.ReadLong()
		if i < 0 || i >= int64(len(u.Types())) {
			r.ReportError("skip union", "branch index out of range")
			return
		}
		skipAvro(r, u.Types()[i])
	case avro.Array:
		skipBlocks(r, func() { skipAvro(r, deref(t).(*avro.ArraySchema).Items()) })
	case avro.Map:
		skipBlocks(r, func() { r.SkipString(); skipAvro(r, deref(t).(*avro.MapSchema).Values()) })
	case avro.Ref:
		skipAvro(r, deref(t))
	}
}

// skipBlocks skips the blocks of an array or a map, one item at a time (a block's byte
// size, when written, is not trusted).
func skipBlocks(r *avro.Reader, item func()) {
	for r.Error == nil {
		n, _ := r.ReadBlockHeader()
		if n == 0 {
			return
		}
		for ; n > 0 && r.Error == nil; n-- {
			item()
		}
	}
}
