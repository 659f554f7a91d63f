package wireformat

import (
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline"
)

// simSchema is streamscore.yaml's schema of the simulator's events.
func simSchema(b *testing.B, format string) *pipeline.Schema {
	b.Helper()
	s := &pipeline.Schema{Format: format, EventTime: "tx_datetime", Fields: []pipeline.Field{
		{Name: "transaction_id", Type: pipeline.TypeInt, Required: true},
		{Name: "tx_datetime", Type: pipeline.TypeTime, Required: true},
		{Name: "customer_id", Type: pipeline.TypeInt, Required: true},
		{Name: "terminal_id", Type: pipeline.TypeInt, Required: true},
		{Name: "tx_amount", Type: pipeline.TypeFloat, Required: true},
	}}
	if err := s.Compile(); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkDecodeFormats is the decode cost per event of the simulator's events in JSON
// and in each registry format (the schema cached, as after the first event of its id).
func BenchmarkDecodeFormats(b *testing.B) {
	gen := sim.New(sim.Config{Seed: 1})
	txs := make([]sim.Tx, 1024)
	for i := range txs {
		txs[i] = gen.Next()
	}
	avroEnc, err := sim.AvroEncoder(2)
	if err != nil {
		b.Fatal(err)
	}
	protoEnc, err := sim.ProtoEncoder()
	if err != nil {
		b.Fatal(err)
	}
	reg := &memRegistry{schemas: map[int][2]string{
		1: {"AVRO", sim.AvroSchemas[2]}, 2: {"PROTOBUF", sim.ProtoSchema}, 3: {"JSON", sim.JSONSchema},
	}}
	for _, tc := range []struct {
		format string
		id     int
		enc    sim.Encoder
		prefix []byte
	}{
		{pipeline.FormatJSON, 0, sim.JSONEncoder, nil},
		{pipeline.FormatAvro, 1, avroEnc, nil},
		{pipeline.FormatProtobuf, 2, protoEnc, []byte{0}},
		{pipeline.FormatJSONSchema, 3, sim.JSONEncoder, nil},
	} {
		b.Run(tc.format, func(b *testing.B) {
			s := simSchema(b, tc.format)
			if tc.id != 0 {
				f, err := New(b.Context(), Options{Kind: tc.format, Registry: reg})
				if err != nil {
					b.Fatal(err)
				}
				s.SetValueFormat(f)
			}
			vals := make([][]byte, len(txs))
			size := 0
			for i := range txs {
				v := []byte(nil)
				if tc.id != 0 {
					v = append(wire(tc.id, nil), tc.prefix...)
				}
				if vals[i], err = tc.enc(v, &txs[i]); err != nil {
					b.Fatal(err)
				}
				size += len(vals[i])
			}
			d := pipeline.NewDecoder(s)
			ev := d.NewEvent()
			b.ReportAllocs()
			b.SetBytes(int64(size / len(vals)))
			b.ResetTimer()
			for i := range b.N {
				if err := d.Decode(vals[i%len(vals)], time.Time{}, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
