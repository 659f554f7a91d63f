package sim

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// lateAcks is a RawProducer that acknowledges events at once and labels only when release
// runs, so that a label is not acknowledged before the event needing it by chance. It records, for each event, whether every label it needs had
// been acknowledged when the event was produced.
type lateAcks struct {
	delay time.Duration

	last       time.Time // the last ProduceRaw
	mu         sync.Mutex
	held       []func(error) // label acks not yet run
	ackedUpTo  int           // labels[:ackedUpTo] are acknowledged
	labels     []time.Time   // label transaction times, in the order produced
	events     int
	violations int
	unreadable int
	// labelsMidRun is how many labels came before the last event (not at the end).
	labelsMidRun int
	first        string
}

// txTime is the tx_datetime of an event or a label (the zero time if it has none).
func txTime(value []byte) time.Time {
	const key = `"tx_datetime":"`
	i := bytes.Index(value, []byte(key))
	if i < 0 {
		return time.Time{}
	}
	v := value[i+len(key):]
	ts, _ := time.Parse(time.RFC3339, string(v[:max(bytes.IndexByte(v, '"'), 0)]))
	return ts
}

func (p *lateAcks) ProduceRaw(topic string, _, value []byte, _ map[string]string, ack func(error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = time.Now()
	if topic == "labels" {
		p.labels = append(p.labels, txTime(value))
		p.held = append(p.held, ack)
		return
	}
	p.events++
	p.labelsMidRun = len(p.labels)
	at := txTime(value)
	if at.IsZero() {
		p.unreadable++
	}
	need := at.Add(-p.delay)
	// Labels are written in time order: the oldest one not yet acknowledged decides.
	if p.ackedUpTo < len(p.labels) && !p.labels[p.ackedUpTo].After(need) {
		p.violations++
		if p.first == "" {
			p.first = "event at " + at.String() + " produced before the label of " + p.labels[p.ackedUpTo].String() + " was acknowledged"
		}
	}
	ack(nil)
}

// release acknowledges the labels held so far.
func (p *lateAcks) release() {
	p.mu.Lock()
	held := p.held
	p.held = nil
	p.ackedUpTo = len(p.labels)
	p.mu.Unlock()
	for _, ack := range held {
		ack(nil)
	}
}

func (p *lateAcks) Flush(context.Context) error {
	p.release()
	return nil
}

// TestProduceAcknowledgesLabelsBeforeTheEventsThatNeedThem: the feedback join's contract
// (docs/features.md): every label an event needs is acknowledged by Kafka before
// the event is produced, however late the acknowledgements come. Here labels are
// acknowledged only once the producer has stopped handing over records for 5 ms, that is,
// only when Produce waits for them.
func TestProduceAcknowledgesLabelsBeforeTheEventsThatNeedThem(t *testing.T) {
	const delay = 2 * 24 * time.Hour // labels are due from the third simulated day on
	p := &lateAcks{delay: delay}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(time.Millisecond)
			p.mu.Lock()
			idle := time.Since(p.last) > 5*time.Millisecond
			p.mu.Unlock()
			if idle {
				p.release()
			}
		}
	}()
	res, err := Produce(ctx, p, ProduceOptions{Events: 60_000, Seed: 3, Topic: "events", Labels: "labels", LabelDelay: delay}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// About 10,000 events a simulated day.
	if p.events != 60_000 || p.unreadable > 0 || res.Labels != int64(len(p.labels)) || p.labelsMidRun < 30_000 {
		t.Fatalf("produced %d events (%d without a time) and %d labels, %d of them before the last event (result: %+v)", p.events, p.unreadable, len(p.labels), p.labelsMidRun, res)
	}
	if p.violations > 0 {
		t.Fatalf("%d of %d events were produced before a label they need was acknowledged; first: %s", p.violations, p.events, p.first)
	}
}
