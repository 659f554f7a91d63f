package sim

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The simulator's events in the schema-registry formats: the same fields and values as
// AppendEvent's JSON (the amount rounded to cents exactly as the JSON writes it, the time
// to the second), so that the same events in any format give bit-identical features.

// AvroSchemas are three versions of the event's Avro schema, each BACKWARD compatible
// with the one before: v2 adds a field with a default, v3 adds an optional field and
// removes a field the feature plan does not read (channel).
var AvroSchemas = [3]string{
	`{"type":"record","name":"Transaction","namespace":"streamscore.sim","fields":[
{"name":"transaction_id","type":"long"},
{"name":"tx_datetime","type":{"type":"long","logicalType":"timestamp-millis"}},
{"name":"customer_id","type":"long"},
{"name":"terminal_id","type":"long"},
{"name":"tx_amount","type":"double"},
{"name":"channel","type":"string"}]}`,
	`{"type":"record","name":"Transaction","namespace":"streamscore.sim","fields":[
{"name":"transaction_id","type":"long"},
{"name":"tx_datetime","type":{"type":"long","logicalType":"timestamp-millis"}},
{"name":"customer_id","type":"long"},
{"name":"terminal_id","type":"long"},
{"name":"tx_amount","type":"double"},
{"name":"channel","type":"string"},
{"name":"currency","type":"string","default":"EUR"}]}`,
	`{"type":"record","name":"Transaction","namespace":"streamscore.sim","fields":[
{"name":"transaction_id","type":"long"},
{"name":"tx_datetime","type":{"type":"long","logicalType":"timestamp-millis"}},
{"name":"customer_id","type":"long"},
{"name":"terminal_id","type":"long"},
{"name":"tx_amount","type":"double"},
{"name":"currency","type":"string","default":"EUR"},
{"name":"note","type":["null","string"],"default":null}]}`,
}

// ProtoSchema is the event's Protobuf schema (the first message is the event).
const ProtoSchema = `syntax = "proto3";
package streamscore.sim;
message Transaction {
  int64 transaction_id = 1;
  string tx_datetime = 2;
  int64 customer_id = 3;
  int64 terminal_id = 4;
  double tx_amount = 5;
}
`

// JSONSchema is the event's JSON Schema.
const JSONSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
"properties":{"transaction_id":{"type":"integer","minimum":0},"tx_datetime":{"type":"string"},
"customer_id":{"type":"integer"},"terminal_id":{"type":"integer"},"tx_amount":{"type":"number"}},
"required":["transaction_id","tx_datetime","customer_id","terminal_id","tx_amount"]}`

// Encoder appends one event's payload (after the wire-format header) to dst.
type Encoder func(dst []byte, tx *Tx) ([]byte, error)

type avroTxV1 struct {
	TransactionID int64     `avro:"transaction_id"`
	Time          time.Time `avro:"tx_datetime"`
	CustomerID    int64     `avro:"customer_id"`
	TerminalID    int64     `avro:"terminal_id"`
	Amount        float64   `avro:"tx_amount"`
	Channel       string    `avro:"channel"`
	Currency      string    `avro:"currency"`
	Note          *string   `avro:"note"`
}

// cents is the amount exactly as AppendEvent writes it, read back.
func cents(a float64) float64 {
	x, _ := strconv.ParseFloat(strconv.FormatFloat(a, 'f', 2, 64), 64) // FormatFloat's output always parses
	return x
}

// AvroEncoder returns the encoder of version v (0, 1 or 2) of AvroSchemas.
func AvroEncoder(v int) (Encoder, error) {
	sch, err := avro.Parse(AvroSchemas[v])
	if err != nil {
		return nil, err
	}
	note := "sim"
	return func(dst []byte, tx *Tx) ([]byte, error) {
		rec := avroTxV1{TransactionID: tx.ID, Time: tx.Time.UTC().Truncate(time.Second), CustomerID: tx.CustomerID,
			TerminalID: tx.TerminalID, Amount: cents(tx.Amount), Channel: "card", Currency: "EUR", Note: &note}
		b, err := avro.Marshal(sch, &rec)
		return append(dst, b...), err
	}, nil
}

// ProtoEncoder returns the encoder of ProtoSchema's Transaction.
func ProtoEncoder() (Encoder, error) {
	c := protocompile.Compiler{Resolver: &protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"sim.proto": ProtoSchema}),
	}}
	files, err := c.Compile(context.Background(), "sim.proto")
	if err != nil {
		return nil, fmt.Errorf("compiling the simulator's Protobuf schema: %w", err)
	}
	md := files[0].Messages().Get(0)
	field := func(n string) protoreflect.FieldDescriptor { return md.Fields().ByName(protoreflect.Name(n)) }
	id, ts, cust, term, amt := field("transaction_id"), field("tx_datetime"), field("customer_id"), field("terminal_id"), field("tx_amount")
	return func(dst []byte, tx *Tx) ([]byte, error) {
		m := dynamicpb.NewMessage(md)
		m.Set(id, protoreflect.ValueOfInt64(tx.ID))
		m.Set(ts, protoreflect.ValueOfString(tx.Time.UTC().Format(time.RFC3339)))
		m.Set(cust, protoreflect.ValueOfInt64(tx.CustomerID))
		m.Set(term, protoreflect.ValueOfInt64(tx.TerminalID))
		m.Set(amt, protoreflect.ValueOfFloat64(cents(tx.Amount)))
		return proto.MarshalOptions{Deterministic: true}.MarshalAppend(dst, m)
	}, nil
}

// JSONEncoder is the encoder of JSONSchema: the event's JSON.
func JSONEncoder(dst []byte, tx *Tx) ([]byte, error) { return tx.AppendEvent(dst), nil }
