//go:build integration

package drivers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/topics"
)

// BenchmarkAPILatency measures the HTTP API with an open-loop load generator (fixed
// arrival rate): OIP infer of one golden row and POST /v1/events, p50 and p99 at 100,
// 1,000 and 5,000 requests/s, next to the Kafka floor of the same broker (one produce to
// read hop at the same rates). A measurement, not a check: it reports the figures as
// benchmark metrics (and into $STREAMSCORE_TEST_REPORT) and judges nothing.
// STREAMSCORE_API_BENCH_SECONDS is the seconds per step (default 3); make bench runs it:
//
//	STREAMSCORE_TEST_BROKERS=127.0.0.1:29092 STREAMSCORE_API_BENCH_SECONDS=3 \
//	  go test -tags integration -run '^$' -bench '^BenchmarkAPILatency$' -benchtime 1x ./internal/drivers
func BenchmarkAPILatency(b *testing.B) {
	secs := 3.0
	if v := os.Getenv("STREAMSCORE_API_BENCH_SECONDS"); v != "" {
		var err error
		if secs, err = strconv.ParseFloat(v, 64); err != nil || secs <= 0 {
			b.Fatalf("STREAMSCORE_API_BENCH_SECONDS=%q: want a positive number of seconds", v)
		}
	}
	c := testConfig(b, testenv.Brokers(b))
	createInputTopics(b, c, 3)
	c.HTTP.MaxInFlight = 20_000
	j := startAPI(b, c)
	d := time.Duration(secs * float64(time.Second))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2000}, Timeout: 30 * time.Second}
	inferOne := inferBody(readGolden(b)[:1])
	ctx := context.Background()
	step := 0
	for _, rate := range []float64{100, 1000, 5000} {
		b.Run(fmt.Sprintf("rate=%.0f", rate), func(b *testing.B) {
			for range b.N {
				floor := kafkaFloor(b, c.Kafka, c.Topics.Labels, rate, d)
				infer, err := apiLoad(ctx, client, "infer", j.base+"/v2/models/fraud/infer", rate, d, func(int) []byte { return inferOne })
				if err != nil {
					b.Fatal(err)
				}
				step++
				base := step * 10_000_000 // event ids unique across steps and iterations
				events, err := apiLoad(ctx, client, "events", j.base+"/v1/events", rate, d, func(i int) []byte { return event(base + i) })
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(infer.P50Ms, "infer_p50_ms")
				b.ReportMetric(infer.P99Ms, "infer_p99_ms")
				b.ReportMetric(events.P50Ms, "events_p50_ms")
				b.ReportMetric(events.P99Ms, "events_p99_ms")
				b.ReportMetric(floor[0], "kafka_p50_ms")
				b.ReportMetric(floor[1], "kafka_p99_ms")
				report(b, "%5.0f req/s: OIP infer p50 %.2f ms p99 %.2f ms (%d failed); /v1/events p50 %.2f ms p99 %.2f ms (%d failed, %.0f/s achieved); Kafka one hop p50 %.2f ms p99 %.2f ms",
					rate, infer.P50Ms, infer.P99Ms, infer.Failed, events.P50Ms, events.P99Ms, events.Failed, events.AchvRate, floor[0], floor[1])
			}
		})
	}
}

// kafkaFloor is the latency of one Kafka hop at rate records/s for d, open loop: from a
// record's scheduled send to its read by a tail, in ms (p50, p99).
func kafkaFloor(t testing.TB, kc topics.ClientConfig, topic string, rate float64, d time.Duration) [2]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	tail, err := topics.NewTail(ctx, kc, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	prod, err := topics.NewProducer(kc, topics.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	n := int(rate * d.Seconds())
	sent := make([]time.Time, n)
	read := make(chan []time.Duration, 1)
	go func() {
		var lat []time.Duration
		for len(lat) < n {
			recs, err := tail.Fetch(ctx)
			now := time.Now()
			for _, r := range recs {
				i, _ := strconv.Atoi(string(r.Key)) // keys are our own indexes
				lat = append(lat, now.Sub(sent[i]))
			}
			if err != nil {
				break
			}
		}
		read <- lat
	}()
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at)) // the generator's schedule, not a test barrier
		sent[i] = at
		prod.ProduceResult(topic, []byte(strconv.Itoa(i)), []byte(`{}`), func(int32, int64, time.Time, error) {})
	}
	lat := <-read
	if len(lat) < n {
		t.Fatalf("kafka floor: %d of %d records read back", len(lat), n)
	}
	slices.Sort(lat)
	return [2]float64{float64(lat[len(lat)/2]) / 1e6, float64(lat[len(lat)*99/100]) / 1e6}
}

// apiPoint is the latency of one HTTP API route at one offered rate.
type apiPoint struct {
	Route    string  `json:"route"`
	Rate     float64 `json:"rate"` // requests/s offered
	Sent     int     `json:"sent"`
	Failed   int     `json:"failed"` // transport errors and non-2xx answers
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	AchvRate float64 `json:"achieved_rate"`
}

// apiLoad offers POST requests to url at a fixed rate for d, open loop: request i is sent
// at start + i/rate whether or not earlier ones were answered, and its latency counts from
// that scheduled time, so a server that falls behind shows it (no coordinated omission).
// body(i) is request i's body.
func apiLoad(ctx context.Context, client *http.Client, route, url string, rate float64, d time.Duration, body func(i int) []byte) (apiPoint, error) {
	if rate <= 0 || d <= 0 {
		return apiPoint{}, fmt.Errorf("api load: rate %v and duration %v must be positive", rate, d)
	}
	n := int(rate * d.Seconds())
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				wg.Wait()
				return apiPoint{}, ctx.Err()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post(url, "application/json", bytes.NewReader(body(i)))
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			lat[i] = time.Since(at)
			failed[i] = err != nil
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	p := apiPoint{Route: route, Rate: rate, Sent: n, AchvRate: float64(n) / elapsed.Seconds()}
	ok := lat[:0:0]
	for i, l := range lat {
		if failed[i] {
			p.Failed++
			continue
		}
		ok = append(ok, l)
	}
	slices.Sort(ok)
	if len(ok) > 0 {
		p.P50Ms = float64(ok[len(ok)/2]) / 1e6
		p.P99Ms = float64(ok[len(ok)*99/100]) / 1e6
	}
	return p, nil
}
