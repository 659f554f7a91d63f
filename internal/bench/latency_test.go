package bench

import (
	"testing"
	"time"

	"github.com/streamscore/streamscore/pipeline/record"
)

func TestPercentileMs(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := percentileMs(lat, c.q); got != c.want {
			t.Errorf("q%v of 1..1000 ms = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentileMs(nil, 0.5); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
	if got := percentileMs([]time.Duration{1500 * time.Microsecond}, 0.999); got != 1.5 {
		t.Errorf("p99.9 of one 1.5ms = %v, want 1.5", got)
	}
}

func TestSourceOf(t *testing.T) {
	for name, v := range map[string]string{
		"prediction": `{"source":{"topic":"tx","partition":2,"offset":77},"key":"596","score":0.01,"model":{"name":"fraud","version":"3f"},"event_time":"2018-04-01T00:07:56Z","scored_at":"2026-11-22T08:00:00Z"}`,
		"relay":      `{"source":{"topic":"tx","partition":2,"offset":77}}`,
	} {
		got, err := sourceOf([]byte(v))
		if err != nil || got != (pos{2, 77}) {
			t.Errorf("%s: sourceOf = %v, %v; want {2 77}", name, got, err)
		}
	}
	if _, err := sourceOf([]byte("not json")); err == nil {
		t.Error("a record that is not JSON gave no error")
	}
}

// TestProbeArrived: a prediction of a measured event is timed from its produce time, a
// warm-up one marks its partition, one read before its ack waits in pending.
func TestProbeArrived(t *testing.T) {
	pr := newProbe(nil, nil, 2, false)
	t0 := time.Unix(1000, 0)
	pr.sent[pos{0, 1}] = t0
	pr.sent[pos{1, 5}] = time.Time{}
	rec := func(v string) record.Record { return record.Record{Value: []byte(v)} }
	complete, err := pr.arrived([]record.Record{
		rec(`{"source":{"partition":0,"offset":1}}`),
		rec(`{"source":{"partition":1,"offset":5}}`),
		rec(`{"source":{"partition":2,"offset":9}}`),
	}, t0.Add(3*time.Millisecond))
	if err != nil || complete {
		t.Fatalf("arrived = %v, %v; want not complete, no error", complete, err)
	}
	if len(pr.lat) != 1 || pr.lat[0] != 3*time.Millisecond {
		t.Errorf("latencies %v, want [3ms]", pr.lat)
	}
	if !pr.warmSeen[1] || len(pr.warmSeen) != 1 {
		t.Errorf("warm partitions %v, want {1}", pr.warmSeen)
	}
	if _, ok := pr.pending[pos{2, 9}]; !ok {
		t.Errorf("pending %v, want {2 9}", pr.pending)
	}
	pr.sent[pos{0, 2}] = t0
	if complete, err = pr.arrived([]record.Record{rec(`{"source":{"partition":0,"offset":2}}`)}, t0.Add(time.Millisecond)); err != nil || !complete {
		t.Errorf("second measured prediction: arrived = %v, %v; want complete", complete, err)
	}
	lp, err := pr.summarize(LatencyPoint{Offered: 10})
	if err != nil || lp.Events != 2 || lp.P50Ms != 1 || lp.P99Ms != 3 {
		t.Errorf("summarize = %+v, %v; want 2 events, p50 1ms, p99 3ms", lp, err)
	}
}

func TestProbeSummarizeShort(t *testing.T) {
	pr := newProbe(nil, nil, 3, false)
	pr.lat = []time.Duration{time.Millisecond}
	if _, err := pr.summarize(LatencyPoint{Offered: 10}); err == nil {
		t.Error("1 of 3 predictions read gave no error")
	}
}
