package topics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/internal/onnxtest"
	"github.com/streamscore/streamscore/internal/testenv"
)

// onRegistryBrokers runs test on the embedded broker (fast tier) or on Apache Kafka
// (integration tier), with a registry on a fresh topic of its own (deleted afterwards).
func onRegistryBrokers(t *testing.T, test func(t *testing.T, ctx context.Context, reg *Registry)) {
	t.Helper()
	run := func(t *testing.T, addrs []string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cc := ClientConfig{Brokers: addrs}
		topic := testenv.Name(t, "streamscore.models.test")
		reg, err := OpenRegistry(ctx, cc, RegistryOptions{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
			if err != nil {
				t.Errorf("deleting %s: %v", topic, err)
				return
			}
			defer cl.Close()
			if _, err := kadm.NewClient(cl).DeleteTopic(ctx, topic); err != nil {
				t.Errorf("deleting %s: %v", topic, err)
			}
		}()
		test(t, ctx, reg)
	}
	if testenv.Integration {
		t.Run("apache-kafka", func(t *testing.T) { run(t, testenv.Brokers(t)) })
		return
	}
	t.Run("embedded", func(t *testing.T) {
		fake, err := NewEmbeddedBroker(1)
		if err != nil {
			t.Fatal(err)
		}
		defer fake.Close()
		run(t, fake.Addrs())
	})
}

// TestRegistryRoundTripLargeModel stores a model of more than 16 MB (34 records of at most
// 512 KiB, each under the broker's default 1 MB limit), reads it back intact, and pushes
// it again, which writes nothing.
func TestRegistryRoundTripLargeModel(t *testing.T) {
	raw := onnxtest.Padded(15, 17<<20)
	onRegistryBrokers(t, func(t *testing.T, ctx context.Context, reg *Registry) {
		meta, err := reg.PutModel(ctx, ModelMeta{Name: "fraud", Width: 15, PushedBy: "test",
			Manifest: json.RawMessage(`{"threshold":0.5}`)}, raw)
		if err != nil {
			t.Fatal(err)
		}
		if want := (len(raw) + ChunkSize - 1) / ChunkSize; meta.Chunks != want || meta.Chunks < 33 {
			t.Fatalf("%d chunks, want %d (more than 32)", meta.Chunks, want)
		}
		got, gotMeta, err := reg.GetModel(ctx, "fraud", meta.Version)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, raw) {
			t.Fatalf("read back %d bytes, differing from the %d pushed", len(got), len(raw))
		}
		if gotMeta.SHA256 != meta.SHA256 || gotMeta.Width != 15 || string(gotMeta.Manifest) != `{"threshold":0.5}` {
			t.Fatalf("read back %+v", gotMeta)
		}

		end, err := reg.endOffset(ctx)
		if err != nil {
			t.Fatal(err)
		}
		again, err := reg.PutModel(ctx, ModelMeta{Name: "fraud", Width: 15, PushedBy: "someone else"}, raw)
		if err != nil {
			t.Fatal(err)
		}
		if !again.PushedAt.Equal(meta.PushedAt) || again.PushedBy != "test" {
			t.Fatalf("re-push returned %+v, want the stored record %+v", again, meta)
		}
		if end2, err := reg.endOffset(ctx); err != nil || end2 != end {
			t.Fatalf("re-push moved the end offset from %d to %d (%v): it wrote records", end, end2, err)
		}
		models, err := reg.Models(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(models) != 1 || models[0].Version != meta.Version {
			t.Fatalf("models %+v, want the one version", models)
		}
		if _, _, err := reg.GetModel(ctx, "fraud", "00000000"); !errors.Is(err, ErrModelNotFound) {
			t.Fatalf("unknown version: %v, want ErrModelNotFound", err)
		}
	})
}

// TestRegistryModelInvisibleWhileChunksMissing plays an interrupted upload and a model
// record whose chunks are gone: neither is listed, and reading them says why.
func TestRegistryModelInvisibleWhileChunksMissing(t *testing.T) {
	raw := bytes.Repeat([]byte("0123456789abcdef"), ChunkSize/16*3) // 3 chunks
	onRegistryBrokers(t, func(t *testing.T, ctx context.Context, reg *Registry) {
		// What PutModel would write, by hand, so that the upload can stop half-way.
		meta, err := reg.PutModel(ctx, ModelMeta{Name: "probe"}, raw[:10]) // any stored model
		if err != nil {
			t.Fatal(err)
		}
		full := meta
		full.Name = "partial"
		produce := func(key string, value []byte) {
			t.Helper()
			if err := reg.prod.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		full.Version = "deadbeef"
		full.Chunks, full.Bytes = 3, int64(len(raw))
		produce(blobKey("partial", "deadbeef", 0), raw[:ChunkSize])
		produce(blobKey("partial", "deadbeef", 1), raw[ChunkSize:2*ChunkSize])

		listed := func() []string {
			t.Helper()
			ms, err := reg.Models(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range ms {
				names = append(names, m.Name)
			}
			return names
		}
		if got := listed(); len(got) != 1 || got[0] != "probe" {
			t.Fatalf("listed %v while partial has chunks but no model record", got)
		}
		if _, _, err := reg.GetModel(ctx, "partial", "deadbeef"); !errors.Is(err, ErrModelNotFound) {
			t.Fatalf("reading the half-uploaded version: %v, want ErrModelNotFound", err)
		}

		v, err := json.Marshal(full)
		if err != nil {
			t.Fatal(err)
		}
		produce(modelKey("partial", "deadbeef"), v) // a record without its third chunk
		if got := listed(); len(got) != 1 {
			t.Fatalf("listed %v while partial's chunk 2 is missing", got)
		}
		if _, _, err := reg.GetModel(ctx, "partial", "deadbeef"); !errors.Is(err, ErrModelIncomplete) {
			t.Fatalf("reading a version without chunk 2: %v, want ErrModelIncomplete", err)
		}

		produce(blobKey("partial", "deadbeef", 2), raw[2*ChunkSize:])
		if got := listed(); len(got) != 2 {
			t.Fatalf("listed %v once every chunk is there, want probe and partial", got)
		}
		// The record's SHA-256 is the probe's, not these bytes': the check catches it.
		if _, _, err := reg.GetModel(ctx, "partial", "deadbeef"); !errors.Is(err, ErrModelIncomplete) {
			t.Fatalf("reading a version whose bytes do not match its SHA-256: %v, want ErrModelIncomplete", err)
		}
	})
}

// TestRegistryActivationsInOrder appends activations of two models and reads them back in
// the order written, with unique keys, and the marks and a malformed record alongside.
func TestRegistryActivationsInOrder(t *testing.T) {
	onRegistryBrokers(t, func(t *testing.T, ctx context.Context, reg *Registry) {
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		var written []Activation
		for i, a := range []Activation{
			{Name: "fraud", Version: "aaaaaaaa", Role: RoleLive},
			{Name: "churn", Version: "cccccccc", Role: RoleLive},
			{Name: "fraud", Version: "bbbbbbbb", Role: RoleShadow},
			{Name: "fraud", Version: "bbbbbbbb", Role: RoleLive},
			{Name: "fraud", Role: RoleShadowOff},
			{Name: "fraud", Version: "aaaaaaaa", Role: RoleLive, Reason: ReasonRollback},
		} {
			a.By = "tester"
			a.At = at // the same instant for all: Seq must still be unique per name
			got, err := reg.Append(ctx, a)
			if err != nil {
				t.Fatalf("activation %d: %v", i, err)
			}
			written = append(written, got)
		}
		if _, err := reg.Append(ctx, Activation{Name: "fraud", Role: RoleLive}); err == nil {
			t.Fatal("appended a live activation without a version")
		}
		if err := reg.prod.ProduceSync(ctx, &kgo.Record{Key: []byte("activation/fraud/x"), Value: []byte("{")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := reg.PutMarks(ctx, Mark{Topic: "transactions", Partition: 3, Offset: 1234, Name: "fraud", Version: "bbbbbbbb"}); err != nil {
			t.Fatal(err)
		}

		s, err := reg.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Activations) != len(written) {
			t.Fatalf("read %d activations, wrote %d", len(s.Activations), len(written))
		}
		seqs := map[string]uint64{}
		for i, a := range s.Activations {
			w := written[i]
			if a.Name != w.Name || a.Version != w.Version || a.Role != w.Role || a.Reason != w.Reason || a.Offset != w.Offset || a.Seq != w.Seq || !a.At.Equal(at) {
				t.Errorf("activation %d: read %+v, wrote %+v", i, a, w)
			}
			if i > 0 && a.Offset <= s.Activations[i-1].Offset {
				t.Errorf("activation %d at offset %d, after %d", i, a.Offset, s.Activations[i-1].Offset)
			}
			if a.Seq <= seqs[a.Name] {
				t.Errorf("activation %d of %s: seq %d after %d", i, a.Name, a.Seq, seqs[a.Name])
			}
			seqs[a.Name] = a.Seq
		}
		if len(s.Marks) != 1 || !reflect.DeepEqual(s.Marks[0], Mark{Topic: "transactions", Partition: 3, Offset: 1234, Name: "fraud", Version: "bbbbbbbb"}) {
			t.Fatalf("marks %+v", s.Marks)
		}
		if len(s.Malformed) != 1 || s.Malformed[0].Key != "activation/fraud/x" {
			t.Fatalf("malformed %+v, want the one broken activation", s.Malformed)
		}
		if k := MarkKey("transactions", 3, 1234); k != "mark/transactions/3/00000000000000001234" {
			t.Fatalf("mark key %q", k)
		}
	})
}

// TestRegistryFollowSeesNewActivation follows the log: the activations already written
// come first and then CaughtUp, and one appended afterwards arrives while Follow runs.
func TestRegistryFollowSeesNewActivation(t *testing.T) {
	onRegistryBrokers(t, func(t *testing.T, ctx context.Context, reg *Registry) {
		if _, err := reg.PutModel(ctx, ModelMeta{Name: "fraud"}, []byte("blob records are not activations")); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"11111111", "22222222"} {
			if _, err := reg.Append(ctx, Activation{Name: "fraud", Version: v, Role: RoleLive, By: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		fctx, stop := context.WithCancel(ctx)
		defer stop()
		seen := make(chan Activation, 10)
		caughtUp := make(chan int, 1) // how many activations fn had seen at CaughtUp
		done := make(chan error, 1)
		go func() {
			n := 0
			done <- reg.Follow(fctx, FollowOptions{CaughtUp: func() { caughtUp <- n }}, func(a Activation) error {
				n++
				seen <- a
				return nil
			})
		}()
		next := func() Activation {
			t.Helper()
			select {
			case a := <-seen:
				return a
			case <-time.After(30 * time.Second):
				t.Fatal("Follow delivered nothing for 30 s")
			}
			return Activation{}
		}
		if a, b := next(), next(); a.Version != "11111111" || b.Version != "22222222" {
			t.Fatalf("followed %s then %s, want 11111111 then 22222222", a.Version, b.Version)
		}
		select {
		case n := <-caughtUp:
			if n != 2 {
				t.Fatalf("caught up after %d activations, want 2", n)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no CaughtUp after the existing activations")
		}

		appending := time.Now()
		w, err := reg.Append(ctx, Activation{Name: "fraud", Version: "33333333", Role: RoleShadow, By: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if a := next(); a.Version != "33333333" || a.Offset != w.Offset || a.Role != RoleShadow {
			t.Fatalf("followed %+v, want %+v", a, w)
		}
		// Logged, not asserted: the bound is the broker's fetch wake-up, not this machine.
		t.Logf("a new activation reached Follow %v after Append was called", time.Since(appending))
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Follow returned %v after cancel, want context.Canceled", err)
		}
	})
}
