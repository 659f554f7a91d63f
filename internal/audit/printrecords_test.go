package audit

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/topics"
)

// TestPrintRecordsPrintsValuesAndDeadLetters: plain records print as their value, records with
// headers (dead letters) with their position and headers; the limit ends the tail.
func TestPrintRecordsPrintsValuesAndDeadLetters(t *testing.T) {
	b, err := topics.NewEmbeddedBroker(1, "out")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cc := topics.ClientConfig{Brokers: b.Addrs()}
	p, err := topics.NewProducer(cc, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ack := func(err error) {
		if err != nil {
			t.Errorf("producing: %v", err)
		}
	}
	p.ProduceRaw("out", []byte("k"), []byte(`{"score":0.5}`), nil, ack)
	p.ProduceRaw("out", []byte("k"), []byte("not json"), map[string]string{"error.class": "invalid_json"}, ack)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := topics.NewReader(cc, topics.FromStart, "out")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	if err := PrintRecords(ctx, r, &out, 2); err != nil {
		t.Fatal(err)
	}
	want := "{\"score\":0.5}\nout/0@1 error.class=\"invalid_json\" value=\"not json\"\n"
	if got := out.String(); got != want {
		t.Fatalf("tail printed\n%q\nwant\n%q", got, want)
	}
	if strings.Count(out.String(), "\n") != 2 {
		t.Fatal("the limit did not end the tail")
	}
}
