//go:build integration

package drivers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// apiJob is a live job serving the HTTP API on a free loopback port.
type apiJob struct {
	base   string
	cancel context.CancelFunc
	done   chan error
}

func startAPI(t testing.TB, c *config.Config) *apiJob {
	t.Helper()
	c.HTTP.Address = "127.0.0.1:0"
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLive(context.Background(), cc, LiveDeps{Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &apiJob{base: "http://" + l.APIAddr(), cancel: cancel, done: make(chan error, 1)}
	go func() { j.done <- l.Run(ctx) }()
	t.Cleanup(func() {
		if err := j.stop(); err != nil {
			t.Errorf("stopping the job: %v", err)
		}
	})
	testenv.Eventually(t, time.Minute, func() error {
		resp, err := http.Get(j.base + "/v2/health/ready")
		if err != nil {
			return fmt.Errorf("the API is not ready: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the API is not ready: %s", resp.Status)
		}
		return nil
	})
	return j
}

// stop cancels the job and waits for Run; a second call returns nil.
func (j *apiJob) stop() error {
	if j.cancel == nil {
		return nil
	}
	j.cancel()
	j.cancel = nil
	select {
	case err := <-j.done:
		return err
	case <-time.After(time.Minute):
		return fmt.Errorf("the job did not stop within a minute")
	}
}

func post(url, contentType string, body []byte) (int, []byte, error) {
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type goldenRow struct {
	Features []float32 `json:"features"`
	Score    float32   `json:"score"`
}

func readGolden(t testing.TB) []goldenRow {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/model/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var rows []goldenRow
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var g goldenRow
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, g)
	}
	return rows
}

func inferBody(rows []goldenRow) []byte {
	var data []float32
	for _, r := range rows {
		data = append(data, r.Features...)
	}
	b, _ := json.Marshal(map[string]any{"id": "t", "inputs": []any{map[string]any{
		"name": "features", "datatype": "FP32", "shape": []int{len(rows), len(rows[0].Features)}, "data": data,
	}}})
	return b
}

// TestAPIInferGoldenWhileStreaming: OIP infer on the golden rows, in requests of 1 and of
// 100 rows, returns the golden scores bit for bit while the stream is scoring.
func TestAPIInferGoldenWhileStreaming(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 3)
	j := startAPI(t, c)
	stream := produceAsync(c, sim.NewStream(7, 0.01), 20_000, 0)
	golden := readGolden(t)
	check := func(rows []goldenRow) {
		t.Helper()
		code, body, err := post(j.base+"/v2/models/fraud/infer", "application/json", inferBody(rows))
		if err != nil || code != http.StatusOK {
			t.Fatalf("infer of %d rows: %d %s %v", len(rows), code, body, err)
		}
		var res struct {
			Outputs []struct {
				Data []float32 `json:"data"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(body, &res); err != nil || len(res.Outputs) != 1 || len(res.Outputs[0].Data) != len(rows) {
			t.Fatalf("infer response %s: %v", body, err)
		}
		for i, got := range res.Outputs[0].Data {
			if math.Float32bits(got) != math.Float32bits(rows[i].Score) {
				t.Fatalf("golden row scored %v, want %v", got, rows[i].Score)
			}
		}
	}
	for i := 0; i < 200 && i < len(golden); i++ {
		check(golden[i : i+1])
	}
	for i := 0; i+100 <= len(golden); i += 100 {
		check(golden[i : i+100])
	}
	res := result(t, stream)
	awaitScored(t, c, int64(res.Events))
	report(t, "golden rows bit-exact through OIP infer (requests of 1 and 100) while %d events streamed", res.Events)
}

func event(i int) []byte {
	return []byte(fmt.Sprintf(`{"transaction_id":%d,"tx_datetime":"2018-04-01T00:%02d:%02dZ","customer_id":%d,"terminal_id":%d,"tx_amount":%d.25}`,
		1_000_000+i, (i/60)%60, i%60, i%500, i%900, 10+i%300))
}

// predictionsBySource reads the predictions topic to its end: each source's records.
func predictionsBySource(t *testing.T, c *config.Config) map[string][][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := map[string][][]byte{}
	err := topics.ReadToEnd(ctx, c.Kafka, []string{c.Topics.Predictions}, func(recs []record.Record) error {
		for _, r := range recs {
			var p pipeline.Prediction
			if err := json.Unmarshal(r.Value, &p); err != nil {
				return err
			}
			k := fmt.Sprintf("%s/%d@%d", p.Source.Topic, p.Source.Partition, p.Source.Offset)
			out[k] = append(out[k], r.Value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// postEvents posts n events from clients goroutines; answers[i] is event i's outcome.
type answer struct {
	code int
	body []byte
	err  error
}

func postEvents(base string, n, clients int) []answer {
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += clients {
				code, body, err := post(base+"/v1/events", "application/json", event(i))
				answers[i] = answer{code, body, err}
			}
		}()
	}
	wg.Wait()
	return answers
}

// TestAPIEventsConcurrentClients: 1,000 events posted by 50 clients get 1,000 answers,
// each identical to its record on the predictions topic, and each input offset is scored
// once.
func TestAPIEventsConcurrentClients(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 3)
	j := startAPI(t, c)
	start := time.Now()
	answers := postEvents(j.base, 1000, 50)
	took := time.Since(start)
	if err := j.stop(); err != nil {
		t.Fatal(err)
	}
	preds := predictionsBySource(t, c)
	seen := map[string]bool{}
	for i, a := range answers {
		if a.err != nil || a.code != http.StatusOK {
			t.Fatalf("event %d: %d %s %v", i, a.code, a.body, a.err)
		}
		var p pipeline.Prediction
		if err := json.Unmarshal(a.body, &p); err != nil {
			t.Fatalf("event %d: answer %s: %v", i, a.body, err)
		}
		k := fmt.Sprintf("%s/%d@%d", p.Source.Topic, p.Source.Partition, p.Source.Offset)
		if seen[k] {
			t.Fatalf("two events answered with the prediction of %s", k)
		}
		seen[k] = true
		if len(preds[k]) != 1 || !bytes.Equal(preds[k][0], a.body) {
			t.Fatalf("event %d: answer %s; predictions topic has %d records for %s: %q", i, a.body, len(preds[k]), k, preds[k])
		}
	}
	if len(preds) != 1000 {
		t.Fatalf("%d input offsets have predictions, want 1000", len(preds))
	}
	report(t, "1000 events from 50 clients: 1000 answers identical to their predictions, each offset scored once (%v)", took.Round(time.Millisecond))
}

// TestAPIEventsRefused: every malformed-event class the API can meet gets 400 with that
// class and leaves the input topic as it was; an oversize body, a wrong content type and
// a slow client get 413, 415 and 408, while a good event posted meanwhile is answered.
func TestAPIEventsRefused(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 3)
	c.HTTP.MaxBodyBytes = "128KiB"
	c.HTTP.ReadTimeout = time.Second
	j := startAPI(t, c)
	good := string(event(1))
	bad := map[string]string{
		``:                  "empty",
		good[:len(good)-4]:  "invalid_json",
		"{\"a\":\"\xff\"}":  "invalid_utf8",
		`[1,2]`:             "not_object",
		`{"customer_id":5}`: "missing_field",
		strings.Replace(good, `"terminal_id":1`, `"terminal_id":"1"`, 1):                 "wrong_type",
		strings.Replace(good, `"customer_id":1,`, `"customer_id":1,"customer_id":2,`, 1): "duplicate_key",
		strings.Replace(good, `"tx_amount":11.25`, `"tx_amount":1e999`, 1):               "non_finite",
		strings.Replace(good, `"tx_amount":11.25`, `"tx_amount":-3`, 1):                  "out_of_range",
		`{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`:                "too_deep",
		`{"pad":"` + strings.Repeat("x", 70_000) + `"}`:                                  "oversize",
	}
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := adm.EndOffsetsSum(ctx, c.Topics.Input[0])
	if err != nil {
		t.Fatal(err)
	}
	for value, class := range bad {
		code, body, err := post(j.base+"/v1/events", "application/json", []byte(value))
		var e struct {
			Error struct{ Class, Message string } `json:"error"`
		}
		if err != nil || code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error.Class != class {
			t.Errorf("%.40q: %d %s %v, want 400 with class %s", value, code, body, err, class)
		}
	}
	after, err := adm.EndOffsetsSum(ctx, c.Topics.Input[0])
	if err != nil || after != before {
		t.Fatalf("input topic end offsets went from %d to %d (%v): a refused event was written", before, after, err)
	}

	// A slow client holds its connection open without finishing its body; meanwhile a
	// good event is answered.
	conn, err := net.Dial("tcp", strings.TrimPrefix(j.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"transac")
	if code, body, err := post(j.base+"/v1/events", "application/json", event(2)); err != nil || code != http.StatusOK {
		t.Fatalf("good event beside a slow client: %d %s %v", code, body, err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow client: %v %v, want 408", resp, err)
	}
	resp.Body.Close()

	if code, body, _ := post(j.base+"/v1/events", "application/json", bytes.Repeat([]byte(" "), 200<<10)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("200 KiB body: %d %s, want 413", code, body)
	}
	if code, body, _ := post(j.base+"/v1/events", "text/plain", event(3)); code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d %s, want 415", code, body)
	}
	if code, body, _ := post(j.base+"/v2/models/fraud/infer", "application/x-www-form-urlencoded", inferBody(readGolden(t)[:1])); code != http.StatusUnsupportedMediaType {
		t.Errorf("infer as a form: %d %s, want 415", code, body)
	}
	report(t, "%d malformed classes refused with 400 and their class, input topic unchanged; 413, 415, 408 for body, type, slow client", len(bad))
}

// TestAPIShutdownDuringBurst cancels the job (SIGTERM) while 20 clients post events:
// every request gets its prediction or a clear error, and every event that was written is
// scored exactly once (by a second job after the restart, when the first stopped first).
func TestAPIShutdownDuringBurst(t *testing.T) {
	c := testConfig(t, realBrokers(t))
	createInputTopics(t, c, 3)
	j := startAPI(t, c)
	answersCh := make(chan []answer, 1)
	go func() { answersCh <- postEvents(j.base, 600, 20) }()
	// Stop once some events have been answered: poll the input topic.
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	testenv.Eventually(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := adm.EndOffsetsSum(ctx, c.Topics.Input[0])
		cancel()
		if err != nil {
			return fmt.Errorf("reading the input's end offsets: %w", err)
		}
		if n < 100 {
			return fmt.Errorf("%d of 100 events written", n)
		}
		return nil
	})
	if err := j.stop(); err != nil {
		t.Fatal(err)
	}
	answers := <-answersCh
	ok, refused := 0, 0
	for i, a := range answers {
		switch {
		case a.err == nil && a.code == http.StatusOK:
			ok++
		case a.err != nil || a.code == http.StatusServiceUnavailable || a.code == http.StatusGatewayTimeout:
			refused++ // connection refused after the drain, not ready, or 504 with its offset
		default:
			t.Fatalf("event %d: %d %s, want its prediction or a clear refusal", i, a.code, a.body)
		}
	}
	// A second job scores whatever the first left; then every written event has one
	// prediction.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	written, err := adm.EndOffsetsSum(ctx, c.Topics.Input[0])
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	startLive(t, c, nil)
	awaitScored(t, c, written)
	preds := predictionsBySource(t, c)
	for k, v := range preds {
		if len(v) != 1 {
			t.Fatalf("%s scored %d times", k, len(v))
		}
	}
	for i, a := range answers {
		if a.code != http.StatusOK {
			continue
		}
		var p pipeline.Prediction
		if err := json.Unmarshal(a.body, &p); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("%s/%d@%d", p.Source.Topic, p.Source.Partition, p.Source.Offset)
		if len(preds[k]) != 1 || !bytes.Equal(preds[k][0], a.body) {
			t.Fatalf("event %d answered %s, predictions topic has %q", i, a.body, preds[k])
		}
	}
	if int64(len(preds)) != written {
		t.Fatalf("%d of %d written events have a prediction", len(preds), written)
	}
	report(t, "shutdown during a burst of 600: %d answered, %d refused clearly, %d written events each scored once", ok, refused, written)
}
