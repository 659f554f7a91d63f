package sim

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// tableAcks acknowledges events at once and table rows from another goroutine, and
// checks that every row true at or before an event's time was acknowledged before the
// event was produced, and that each table topic is in valid_from order.
type tableAcks struct {
	mu         sync.Mutex
	rows       map[string][]time.Time
	unacked    []time.Time // valid_from of rows written and not yet acknowledged
	events     [][]byte
	violations int
	unordered  int
	first      string
	wg         sync.WaitGroup
}

func validFrom(v []byte) time.Time {
	const key = `"valid_from":"`
	i := bytes.Index(v, []byte(key))
	if i < 0 {
		return time.Time{}
	}
	rest := v[i+len(key):]
	ts, _ := time.Parse(time.RFC3339, string(rest[:bytes.IndexByte(rest, '"')]))
	return ts
}

func (p *tableAcks) ProduceRaw(topic string, _, value []byte, _ map[string]string, ack func(error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if topic == "tx" {
		at := txTime(value)
		for _, u := range p.unacked {
			if !u.After(at) {
				p.violations++
				if p.first == "" {
					p.first = "transaction at " + at.String() + " produced before the row true from " + u.String() + " was acknowledged"
				}
			}
		}
		p.events = append(p.events, append([]byte(nil), value...))
		ack(nil)
		return
	}
	at := validFrom(value)
	if rs := p.rows[topic]; len(rs) > 0 && at.Before(rs[len(rs)-1]) {
		p.unordered++
	}
	p.rows[topic] = append(p.rows[topic], at)
	p.unacked = append(p.unacked, at)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.mu.Lock()
		for i, u := range p.unacked {
			if u.Equal(at) {
				p.unacked = append(p.unacked[:i], p.unacked[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
		ack(nil)
	}()
}

func (p *tableAcks) Flush(context.Context) error { p.wg.Wait(); return nil }

// TestTablesKeepTheLookupContract: the simulator's table rows are written in valid_from
// order, each acknowledged before any transaction at or after its valid_from, and the
// transactions are the same with tables as without.
func TestTablesKeepTheLookupContract(t *testing.T) {
	ctx := context.Background()
	with := &tableAcks{rows: map[string][]time.Time{}}
	res, err := Produce(ctx, with, ProduceOptions{Days: 2, Seed: 5, Topic: "tx", Merchants: "merchants", Customers: "customers"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	without := &tableAcks{rows: map[string][]time.Time{}}
	if _, err := Produce(ctx, without, ProduceOptions{Days: 2, Seed: 5, Topic: "tx"}, nil); err != nil {
		t.Fatal(err)
	}
	m, c := len(with.rows["merchants"]), len(with.rows["customers"])
	if m <= 10_000 || c < 5_000 || res.TableRows != int64(m+c) {
		t.Fatalf("%d merchant rows and %d customer rows (%d counted): want every terminal and customer, and updates", m, c, res.TableRows)
	}
	if with.violations > 0 || with.unordered > 0 {
		t.Fatalf("%d transactions produced before a row true for them was acknowledged (first: %s); %d rows out of valid_from order", with.violations, with.first, with.unordered)
	}
	if len(with.events) != len(without.events) {
		t.Fatalf("%d transactions with tables, %d without", len(with.events), len(without.events))
	}
	for i := range with.events {
		if !bytes.Equal(with.events[i], without.events[i]) {
			t.Fatalf("transaction %d differs with tables: %s vs %s", i, with.events[i], without.events[i])
		}
	}
}
