package wireformat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/streamscore/streamscore/pipeline"
)

// protoPlan is a Protobuf writer schema (compiled with protocompile from the text the
// registry holds) and, per message the values name, where each plan field is.
type protoPlan struct {
	file protoreflect.FileDescriptor
	// plans by message (the first top-level message is compiled at once: the mismatch
	// check; others on first use, per decoder).
	first *protoMsgPlan
}

type protoMsgPlan struct {
	md    protoreflect.MessageDescriptor
	paths [][]protoreflect.FieldDescriptor // by plan slot; nil: not in the message
}

func compileProto(text string, s *pipeline.Schema) (*protoPlan, error) {
	const name = "writer.proto"
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{name: text}),
	})}
	files, err := c.Compile(context.Background(), name)
	if err != nil {
		return nil, fmt.Errorf("the writer schema does not compile: %w", err)
	}
	fd := files[0]
	if fd.Messages().Len() == 0 {
		return nil, errors.New("the writer schema declares no message")
	}
	first, err := planMessage(fd.Messages().Get(0), s)
	if err != nil {
		return nil, err
	}
	return &protoPlan{file: fd, first: first}, nil
}

func planMessage(md protoreflect.MessageDescriptor, s *pipeline.Schema) (*protoMsgPlan, error) {
	p := &protoMsgPlan{md: md, paths: make([][]protoreflect.FieldDescriptor, len(s.Fields))}
	for i := range s.Fields {
		f := &s.Fields[i]
		cur := md
		var path []protoreflect.FieldDescriptor
		parts := strings.Split(f.Name, ".")
		for k, part := range parts {
			fd := cur.Fields().ByName(protoreflect.Name(part))
			if fd == nil || fd.IsList() || fd.IsMap() {
				path = nil
				break
			}
			path = append(path, fd)
			if k < len(parts)-1 {
				if fd.Kind() != protoreflect.MessageKind {
					return nil, fmt.Errorf("field %q: %s in message %s is not a message", f.Name, part, md.FullName())
				}
				cur = fd.Message()
			}
		}
		if path == nil {
			if f.Required {
				return nil, fmt.Errorf("field %q is required but message %s has no such (singular) field", f.Name, md.FullName())
			}
			continue
		}
		if err := protoReadable(f, path[len(path)-1]); err != nil {
			return nil, err
		}
		p.paths[i] = path
	}
	return p, nil
}

func protoReadable(f *pipeline.Field, fd protoreflect.FieldDescriptor) error {
	k := fd.Kind()
	ok := false
	switch f.Type {
	case pipeline.TypeInt:
		ok = isProtoInt(k)
	case pipeline.TypeFloat:
		ok = isProtoInt(k) || k == protoreflect.FloatKind || k == protoreflect.DoubleKind
	case pipeline.TypeString:
		ok = k == protoreflect.StringKind || k == protoreflect.EnumKind
	case pipeline.TypeTime:
		ok = k == protoreflect.StringKind || k == protoreflect.MessageKind && fd.Message().FullName() == "google.protobuf.Timestamp"
	}
	if !ok {
		return fmt.Errorf("field %q is a %s in the writer schema, which a %s field cannot read", f.Name, k, f.Type)
	}
	return nil
}

func isProtoInt(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Int64Kind,
		protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return true
	}
	return false
}

func (d *decoder) decodeProto(p *protoPlan, payload []byte, ev *pipeline.Event) error {
	index, body, err := d.f.o.Registry.SplitIndex(payload)
	if err != nil {
		return pipeline.NewBadValue(pipeline.ClassBadWireFormat, "", "bad Protobuf message index: %v", err)
	}
	mp := p.first
	if len(index) > 1 || len(index) == 1 && index[0] != 0 {
		if mp, err = d.protoMessage(p, index); err != nil {
			return err
		}
	}
	if d.msgs == nil {
		d.msgs = map[protoreflect.MessageDescriptor]*dynamicpb.Message{}
	}
	m := d.msgs[mp.md]
	if m == nil {
		m = dynamicpb.NewMessage(mp.md)
		d.msgs[mp.md] = m
	}
	proto.Reset(m)
	if err := proto.Unmarshal(body, m); err != nil {
		return pipeline.NewBadValue(pipeline.ClassInvalidProtobuf, "", "the payload does not decode as %s: %v", mp.md.FullName(), err)
	}
	for i, path := range mp.paths {
		if path != nil {
			if bad := readProtoField(m, path, i, ev, d.s); bad != nil {
				return bad
			}
		}
	}
	return nil
}

// protoMessage resolves a message index (a path of positions among messages, then among
// nested messages) and plans it; the plan is kept by this decoder.
func (d *decoder) protoMessage(p *protoPlan, index []int) (*protoMsgPlan, error) {
	msgs := p.file.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range index {
		if i < 0 || i >= msgs.Len() {
			return nil, pipeline.NewBadValue(pipeline.ClassInvalidProtobuf, "", "message index %v is not in the writer schema", index)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	mp, err := planMessage(md, d.s)
	if err != nil {
		return nil, pipeline.NewBadValue(pipeline.ClassSchemaMismatch, "", "%v", err)
	}
	return mp, nil
}

func readProtoField(m protoreflect.Message, path []protoreflect.FieldDescriptor, i int, ev *pipeline.Event, s *pipeline.Schema) *pipeline.DecodeError {
	for _, fd := range path[:len(path)-1] {
		if !m.Has(fd) {
			return nil
		}
		m = m.Get(fd).Message()
	}
	fd := path[len(path)-1]
	if fd.HasPresence() && !m.Has(fd) {
		return nil
	}
	v := m.Get(fd)
	f := &s.Fields[i]
	switch fd.Kind() {
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		ev.Num[i] = v.Float()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		ev.Int[i], ev.Num[i] = int64(v.Uint()), float64(v.Uint()) //nolint:gosec // a uint32 fits an int64
	case protoreflect.StringKind:
		if f.Type == pipeline.TypeTime {
			t, err := time.Parse(time.RFC3339Nano, v.String())
			if err != nil {
				return pipeline.NewBadValue(pipeline.ClassWrongType, f.Name, "%q is not an RFC 3339 time", v.String())
			}
			setTime(ev, i, t)
		} else {
			ev.Str[i] = v.String()
		}
	case protoreflect.EnumKind:
		ev.Str[i] = string(fd.Enum().Values().ByNumber(v.Enum()).Name())
	case protoreflect.MessageKind: // google.protobuf.Timestamp
		ts := v.Message()
		fs := ts.Descriptor().Fields()
		setTime(ev, i, time.Unix(ts.Get(fs.ByName("seconds")).Int(), ts.Get(fs.ByName("nanos")).Int()))
	default:
		ev.Int[i], ev.Num[i] = v.Int(), float64(v.Int())
	}
	ev.Present |= 1 << uint(i)
	return nil
}

// compileJSONSchema compiles a JSON Schema and checks that it lets the plan's required
// fields exist: a schema whose properties are closed (additionalProperties false) and
// leave one out cannot feed the plan.
func compileJSONSchema(text string, s *pipeline.Schema) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("the writer schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	const loc = "writer.schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("the writer schema: %w", err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("the writer schema does not compile: %w", err)
	}
	if obj, ok := doc.(map[string]any); ok && obj["additionalProperties"] == false {
		props, _ := obj["properties"].(map[string]any)
		for _, f := range s.Fields {
			if _, ok := props[f.Name]; !ok && f.Required {
				return nil, fmt.Errorf("field %q is required but the writer schema allows no property %q", f.Name, f.Name)
			}
		}
	}
	return sch, nil
}

func (d *decoder) decodeJSON(sch *jsonschema.Schema, payload []byte, ev *pipeline.Event) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return pipeline.NewBadValue(pipeline.ClassInvalidJSON, "", "the payload is not JSON: %v", err)
	}
	if err := sch.Validate(v); err != nil {
		return pipeline.NewBadValue(pipeline.ClassSchemaViolation, "", "%v", err)
	}
	return d.json.Decode(payload, time.Time{}, ev)
}
