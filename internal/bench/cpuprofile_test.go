package bench

import (
	"context"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// syntheticProfile is a CPU profile of 100 ms: 30 in the scoring call into ORT, 10 in ORT
// at start-up (creating the session), 60 elsewhere (TreeSHAP reasons).
func syntheticProfile() *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10_000_000,
	}
	stack := func(names ...string) []*profile.Location {
		var locs []*profile.Location
		for _, n := range names {
			f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: n}
			l := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
			p.Function, p.Location = append(p.Function, f), append(p.Location, l)
			locs = append(locs, l)
		}
		return locs
	}
	add := func(ms int64, names ...string) {
		p.Sample = append(p.Sample, &profile.Sample{Location: stack(names...), Value: []int64{ms / 10, ms * 1e6}})
	}
	add(30, "runtime.cgocall", "github.com/yalue/onnxruntime_go._Cfunc_RunOrtSessionWithOptions",
		"github.com/yalue/onnxruntime_go.(*DynamicAdvancedSession).Run", scorerScore, "github.com/streamscore/streamscore/pipeline.(*Operator).flush")
	add(10, "runtime.cgocall", "github.com/yalue/onnxruntime_go._Cfunc_CreateSession", "github.com/streamscore/streamscore/scorer.Open")
	add(60, "github.com/streamscore/streamscore/scorer/treeshap.(*tree).recurse", "github.com/streamscore/streamscore/pipeline.(*Operator).flush")
	return p
}

func TestSplitCPU(t *testing.T) {
	s, err := splitCPU(syntheticProfile(), 2*time.Second, 100_000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.ORTShare-0.3) > 1e-12 || s.TotalMicros != 20 || math.Abs(s.ORTMicros-6) > 1e-9 ||
		math.Abs(s.OtherMicros-14) > 1e-9 || math.Abs(s.ReasonsMicros-12) > 1e-9 || s.Samples != 10 {
		t.Errorf("split %+v: want 20 us = 6 us ORT (30%% of the samples: the start-up's are not) + 14 us, 12 of them TreeSHAP", s)
	}
	if _, err := splitCPU(&profile.Profile{SampleType: syntheticProfile().SampleType}, time.Second, 1, 1); err == nil {
		t.Error("an empty profile split without error")
	}
	var b strings.Builder
	printCPUSplit(&b, s)
	if !strings.Contains(b.String(), "CPU/event: total 20.00 us, ORT 6.00 us, everything else 14.00 us (of which TreeSHAP reasons 12.00 us)") {
		t.Errorf("line %q", b.String())
	}
}

// TestProfilerUntilStopped serves a profile on an address that only starts listening after
// the profiler has started (a child starting up), and checks that the profiler retried,
// took profiles back to back and merged them.
func TestProfilerUntilStopped(t *testing.T) {
	addr, err := freeAddress()
	if err != nil {
		t.Fatal(err)
	}
	prof := startProfiler(context.Background(), addr)
	time.Sleep(100 * time.Millisecond)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 100)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/pprof/profile" || r.URL.Query().Get("seconds") != "1" {
			http.NotFound(w, r)
			return
		}
		served <- struct{}{}
		syntheticProfile().Write(w) //nolint:errcheck // the client's parse fails if this does
	})}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	defer srv.Close()
	for range 3 {
		<-served
	}
	p, err := prof.stop()
	if err != nil {
		t.Fatal(err)
	}
	share, _, samples, err := ortShare(p)
	if err != nil || math.Abs(share-0.3) > 1e-12 || samples < 30 {
		t.Errorf("merged profile: ORT share %v, %d samples (want 0.3 of at least 3 profiles' 30), %v", share, samples, err)
	}
	path := filepath.Join(t.TempDir(), ProfileFile)
	if err := writeProfile(p, path); err != nil {
		t.Fatal(err)
	}
}

func TestProfilerError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "cpu profiling already in use", http.StatusInternalServerError)
	})}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	defer srv.Close()
	prof := startProfiler(context.Background(), l.Addr().String())
	<-prof.done
	if _, err := prof.stop(); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("error %v, want the server's", err)
	}
	if _, err := prof.stop(); err == nil {
		t.Error("a second stop forgot the error")
	}
}
