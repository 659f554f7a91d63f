package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/streamscore/streamscore/scorer"
)

// endlessSource is memSource that, once its records are fetched, waits for ctx like a
// live group with nothing new.
type endlessSource struct{ memSource }

func (s *endlessSource) Fetch(ctx context.Context) ([]Record, error) {
	recs, err := s.memSource.Fetch(ctx)
	if errors.Is(err, io.EOF) {
		<-ctx.Done()
		return nil, nil
	}
	return recs, err
}

type goldenRow struct {
	Features []float32 `json:"features"`
	Score    float32   `json:"score"`
}

func readGolden(t *testing.T) []goldenRow {
	t.Helper()
	f, err := os.Open("../testdata/model/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []goldenRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var g goldenRow
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, g)
	}
	return rows
}

// TestInferSharesTheBatcher scores the golden rows through Infer, one row and 100 rows a
// request from 8 goroutines, while the operator scores a stream, and checks every score
// bit for bit; after Run returns Infer says the operator is not running.
func TestInferSharesTheBatcher(t *testing.T) {
	s, fs := handbookSpec(t)
	model := openTestModel(t)
	recs, _, labels := testRecordsWithLabels(5000, rand.New(rand.NewPCG(1, 2)))
	sink := newRecordingSink()
	src := &endlessSource{memSource{recs: recs, rng: rand.New(rand.NewPCG(3, 4)), onCommit: func([]Offset) {}}}
	op, err := New(Config{
		Schema: s, Features: fs, Model: model,
		Topics:   Topics{Predictions: "preds", DeadLetter: "dlq"},
		Batch:    scorer.BatcherConfig{MaxSize: 256},
		Feedback: &memFeedback{recs: labels, rng: rand.New(rand.NewPCG(5, 6))},
	}, src, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()

	golden := readGolden(t)
	width := op.NumFeatures()
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for g := range 8 {
		per := 1
		if g%2 == 1 {
			per = 100
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := 0; start+per <= len(golden); start += per {
				feat := make([]float32, 0, per*width)
				for _, r := range golden[start : start+per] {
					feat = append(feat, r.Features...)
				}
				res, err := op.Infer(context.Background(), feat, per)
				if err != nil {
					errs <- err
					return
				}
				for i, got := range res.Scores {
					if want := golden[start+i].Score; math.Float32bits(got) != math.Float32bits(want) {
						errs <- errors.New("golden row scored differently")
						return
					}
				}
				if res.Version != model.Version() {
					errs <- errors.New("wrong version " + res.Version)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := op.Infer(context.Background(), golden[0].Features, 1); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Infer after Run returned: %v, want ErrNotRunning", err)
	}
	if _, err := op.Infer(context.Background(), golden[0].Features[:3], 1); err == nil {
		t.Fatal("Infer took a row of 3 features")
	}
}

func TestEventCheck(t *testing.T) {
	s, fs := handbookSpec(t)
	c := NewEventCheck(s, fs)
	key, err := c.Check([]byte(`{"transaction_id":1234,"tx_datetime":"2018-04-01T00:07:56Z","customer_id":596,"terminal_id":3156,"tx_amount":57.16}`))
	if err != nil || string(key) != "596" {
		t.Fatalf("good event: key %q, %v", key, err)
	}
	for value, class := range map[string]ErrorClass{
		``:                        ClassEmpty,
		`{"transaction_id":1`:     ClassInvalidJSON,
		`[1]`:                     ClassNotObject,
		"{\"a\":\"\xff\"}":        ClassInvalidUTF8,
		`{"transaction_id":1234}`: ClassMissingField,
		`{"transaction_id":"x","tx_datetime":"2018-04-01T00:07:56Z","customer_id":596,"terminal_id":3156,"tx_amount":57.16}`: ClassWrongType,
		`{"transaction_id":1234,"tx_datetime":"2018-04-01T00:07:56Z","customer_id":596,"terminal_id":3156,"tx_amount":-1}`:   ClassOutOfRange,
	} {
		_, err := c.Check([]byte(value))
		var de *DecodeError
		if !errors.As(err, &de) || de.Class != class {
			t.Errorf("%q: %v, want class %s", value, err, class)
		}
	}
}
