package lifecycle

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/onnxtest"
	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// registry opens a registry of the test's own: on Apache Kafka in the integration tier
// (make test), on an embedded broker in the fast tier.
func registry(t *testing.T) (context.Context, *topics.Registry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var cc topics.ClientConfig
	topic := testenv.Name(t, "models")
	if testenv.Integration {
		cc.Brokers = testenv.Brokers(t)
	} else {
		b, err := topics.NewEmbeddedBroker(1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		cc.Brokers = b.Addrs()
	}
	reg, err := topics.OpenRegistry(ctx, cc, topics.RegistryOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return ctx, reg
}

func golden(t *testing.T) (rows []float32, width int) {
	t.Helper()
	f, err := os.Open("../../testdata/model/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct{ Features []float32 }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows, width = append(rows, r.Features...), len(r.Features)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, width
}

// logistic is a valid model of width 3 whose version differs with bias.
func logistic(bias float32) []byte { return onnxtest.Logistic(3, []float32{0.5, -0.25, 1}, bias) }

func TestPushStoresTheReferenceModel(t *testing.T) {
	ctx, reg := registry(t)
	rows, width := golden(t)
	meta, err := PushFile(ctx, reg, "../../testdata/model/fraud.onnx", PushOptions{Name: "fraud", Width: width, Golden: rows, By: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := scorer.Open(scorer.Options{Path: "../../testdata/model/fraud.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if meta.Version != m.Version() || meta.Width != width || meta.PushedBy != "ci" {
		t.Fatalf("stored %+v, want version %s of width %d by ci", meta, m.Version(), width)
	}
}

// TestPushRefusesBadModels: each bad model is refused with a message that says what to
// do, and the registry topic is left as it was.
func TestPushRefusesBadModels(t *testing.T) {
	ctx, reg := registry(t)
	before, err := reg.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sample := []float32{1, 2, 3, 0.5, 0, 4}
	for _, tc := range []struct {
		name string
		raw  []byte
		kind error
		says string
	}{
		{"corrupt", onnxtest.Corrupt(), nil, "does not load in ONNX Runtime (export it again"},
		{"wrong width", onnxtest.Logistic(4, make([]float32, 4), 0), scorer.ErrWidth, "model takes 4 inputs but the feature spec has 3"},
		{"NaN", onnxtest.NaNOutput(3), scorer.ErrScores, "scores NaN"},
		{"out of range", onnxtest.OutOfRange(3), scorer.ErrScores, "scores must be probabilities in [0, 1]"},
		{"batch dependent", onnxtest.BatchDependent(3), scorer.ErrBatchDependent, "must not depend on the rows scored with it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Push(ctx, reg, tc.raw, PushOptions{Name: "fraud", Width: 3, Golden: sample, By: "t"})
			if err == nil {
				t.Fatal("pushed")
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("got %v, want %v", err, tc.kind)
			}
			for _, s := range []string{tc.says, "pushing model fraud: ", "nothing was stored"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not say %q", err, s)
				}
			}
			t.Log(err)
		})
	}
	after, err := reg.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.End != before.End {
		t.Fatalf("refused pushes wrote %d records", after.End-before.End)
	}
}

func TestActivateRollbackList(t *testing.T) {
	ctx, reg := registry(t)
	var versions []string
	for _, b := range []float32{0, 1, 2} {
		meta, err := Push(ctx, reg, logistic(b), PushOptions{Name: "fraud", Width: 3, By: "pusher"})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, meta.Version)
	}
	v1, v2, v3 := versions[0], versions[1], versions[2]

	if _, err := Rollback(ctx, reg, "fraud", "op"); err == nil || !strings.Contains(err.Error(), "no live version") {
		t.Fatalf("rollback with nothing live: %v", err)
	}
	for _, v := range []string{v1, v2[:5], v3} { // a unique prefix is enough
		if _, err := Activate(ctx, reg, "fraud", v, topics.RoleLive, "op"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Activate(ctx, reg, "fraud", v1, topics.RoleShadow, "ds"); err != nil {
		t.Fatal(err)
	}
	_, err := Activate(ctx, reg, "fraud", "ffffffff", topics.RoleLive, "op")
	if !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), strings.Join(versions, ", ")) {
		t.Fatalf("unknown version: %v, want ErrUnknownVersion listing %v", err, versions)
	}

	a, err := Rollback(ctx, reg, "fraud", "op")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != v2 || a.Reason != topics.ReasonRollback {
		t.Fatalf("rolled back to %+v, want %s", a, v2)
	}
	list, err := List(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]topics.Role{}
	for _, e := range list {
		roles[e.Version] = e.Role
		if e.Role != "" && (e.Since.By == "" || e.Since.At.IsZero()) {
			t.Errorf("%s is %s with no when or by whom: %+v", e.Version, e.Role, e.Since)
		}
	}
	if want := map[string]topics.Role{v1: topics.RoleShadow, v2: topics.RoleLive, v3: ""}; fmt.Sprint(roles) != fmt.Sprint(want) {
		t.Fatalf("roles %v, want %v", roles, want)
	}
	if len(list) != 3 || list[1].Version != v2 || len(list[1].Activations) != 2 {
		t.Fatalf("list %+v: want 3 versions in push order, %s activated twice", list, v2)
	}
	if _, err := Rollback(ctx, reg, "fraud", "op"); err != nil { // v2 → v1
		t.Fatal(err)
	}
	if _, err := Rollback(ctx, reg, "fraud", "op"); err == nil || !strings.Contains(err.Error(), "no earlier live version") {
		t.Fatalf("rollback past the first version: %v", err)
	}
}

// TestActivateRefusesAmbiguousPrefix pushes logistic models until two versions share a
// first hex digit (at most 17 by pigeonhole), then activates by that digit.
func TestActivateRefusesAmbiguousPrefix(t *testing.T) {
	ctx, reg := registry(t)
	byDigit := map[byte]string{}
	for b := 0; ; b++ {
		meta, err := Push(ctx, reg, logistic(float32(b)/10), PushOptions{Name: "fraud", Width: 3, By: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := byDigit[meta.Version[0]]; ok {
			_, err := Activate(ctx, reg, "fraud", meta.Version[:1], topics.RoleLive, "op")
			if !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), "give more digits") ||
				!strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), meta.Version) {
				t.Fatalf("ambiguous prefix %s: %v", meta.Version[:1], err)
			}
			return
		}
		byDigit[meta.Version[0]] = meta.Version
	}
}
