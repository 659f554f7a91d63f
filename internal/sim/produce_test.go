package sim

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lateAcks is a RawProducer that acknowledges events at once and labels only when release
// runs, so that a label is not acknowledged before the event needing it by chance. It
// records, for each event, whether every label it needs had been acknowledged when the
// event was produced.
type lateAcks struct {
	delay time.Duration

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
// acknowledged only when Produce waits for them: the test runs in a synctest bubble, and
// the held acknowledgements are released only once every goroutine in it is durably
// blocked, which is Produce waiting on a label (or done). Deterministic on any machine:
// no idle period decides when Produce is waiting.
func TestProduceAcknowledgesLabelsBeforeTheEventsThatNeedThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 2 * 24 * time.Hour // labels are due from the third simulated day on
		const events = 60_000
		p := &lateAcks{delay: delay}
		type outcome struct {
			res ProduceResult
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := Produce(context.Background(), p, ProduceOptions{Events: events, Seed: 3, Topic: "events", Labels: "labels", LabelDelay: delay}, nil)
			done <- outcome{res, err}
		}()
		waits := 0 // releases while Produce was blocked with events still to write
		var out outcome
	loop:
		for {
			synctest.Wait() // Produce is blocked on a label's acknowledgement, or finished
			select {
			case out = <-done:
				break loop
			default:
			}
			p.mu.Lock()
			blocked := len(p.held) > 0 && p.events < events
			p.mu.Unlock()
			if blocked {
				waits++
			}
			p.release()
		}
		if out.err != nil {
			t.Fatal(out.err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		// About 10,000 events a simulated day.
		if p.events != events || p.unreadable > 0 || out.res.Labels != int64(len(p.labels)) || p.labelsMidRun < 30_000 {
			t.Fatalf("produced %d events (%d without a time) and %d labels, %d of them before the last event (result: %+v)", p.events, p.unreadable, len(p.labels), p.labelsMidRun, out.res)
		}
		if waits == 0 { // a check on the test: acknowledgements must have come late
			t.Fatal("Produce never waited for a label's acknowledgement: the test tested nothing")
		}
		if p.violations > 0 {
			t.Fatalf("%d of %d events were produced before a label they need was acknowledged; first: %s", p.violations, p.events, p.first)
		}
		t.Logf("Produce waited for label acknowledgements %d times", waits)
	})
}
