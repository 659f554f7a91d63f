package pipeline

import (
	"testing"
	"time"
)

func BenchmarkDecode(b *testing.B) {
	s := referenceSchema(b)
	d := NewDecoder(s)
	ev := d.NewEvent()
	in := []byte(goodEvent)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		if err := d.Decode(in, time.Time{}, ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	s := referenceSchema(b)
	fs := referenceFeatures(b, s)
	d := NewDecoder(s)
	ev := d.NewEvent()
	if err := d.Decode([]byte(goodEvent), time.Time{}, ev); err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, fs.Len())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := fs.Extract(ev, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePrediction(b *testing.B) {
	e := newPredictionEncoder("fraud", "39e4b2f8")
	buf := make([]byte, 0, 256)
	et := time.Date(2018, 4, 1, 0, 7, 56, 0, time.UTC)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = e.append(buf[:0], "transactions", 3, int64(i), []byte("596"), 0.0132, et, now, nil)
	}
	b.SetBytes(int64(len(buf)))
}
