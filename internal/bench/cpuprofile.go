package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/pprof/profile"
)

// ortPackage prefixes the functions of onnxruntime_go, and scorerScore is the scorer's
// frame that calls into it to score a batch: (*DynamicAdvancedSession).Run, a cgo call
// into ONNX Runtime. With one intra-op thread (the config's default, model.threads: 1)
// ORT creates no thread pool and runs the model on the thread of that cgo call; a
// SIGPROF landing there while it is in C is recorded with the Go stack of the call
// (runtime.cgocall under onnxruntime_go under scorer.(*Model).Score). A sample is the
// scoring call's when its stack holds both; the other onnxruntime_go samples (creating
// the environment and the session at start-up) count with everything else. ORT's pool
// threads (model.threads > 1) are not Go threads: the Go profiler does not see them, and
// the ORT share then reads low.
const (
	ortPackage  = "github.com/yalue/onnxruntime_go."
	scorerScore = "github.com/streamscore/streamscore/scorer.(*Model).Score"
	// treeshapPackage computes the reason codes of a prediction in Go, after its score:
	// named apart because it is most of everything else when reasons are on.
	treeshapPackage = "github.com/streamscore/streamscore/scorer/treeshap."
)

// profileSeconds is the length of each of the CPU profiles taken over a catch-up: a catch-up's
// length is not known in advance and a profile cannot be cut short, so the profiler takes
// short ones back to back and merges them.
const profileSeconds = 1

// CPUSplit is a catch-up's CPU per event split into ONNX Runtime and the rest: the total
// is the child's CPU time (utime+stime); the split is the share of its CPU profile's
// samples in the scoring call into ONNX Runtime (underORT).
type CPUSplit struct {
	TotalMicros    float64 `json:"total_us_per_event"`
	ORTMicros      float64 `json:"ort_us_per_event"`
	OtherMicros    float64 `json:"other_us_per_event"`
	ReasonsMicros  float64 `json:"treeshap_reasons_us_per_event"` // part of OtherMicros
	ORTShare       float64 `json:"ort_share_of_samples"`
	Samples        int64   `json:"samples"`
	IntraOpThreads int     `json:"ort_intra_op_threads"`
}

// profiler takes CPU profiles of the process serving /debug/pprof/ at addr, back to back,
// until stopped.
type profiler struct {
	stopc chan struct{}
	done  chan struct{}
	profs []*profile.Profile
	err   error

	once   sync.Once
	merged *profile.Profile
}

// startProfiler starts profiling addr; the child may not serve it yet (it is retried).
func startProfiler(ctx context.Context, addr string) *profiler {
	p := &profiler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stopc:
				return
			default:
			}
			prof, err := fetchProfile(ctx, addr)
			switch {
			case errors.Is(err, syscall.ECONNREFUSED): // not listening yet
				time.Sleep(20 * time.Millisecond)
			case err != nil:
				p.err = err
				return
			default:
				p.profs = append(p.profs, prof)
			}
		}
	}()
	return p
}

// stop waits for the profile in flight and returns the merged profiles; later calls
// return the same.
func (p *profiler) stop() (*profile.Profile, error) {
	p.once.Do(func() {
		close(p.stopc)
		<-p.done
		switch {
		case p.err != nil:
		case len(p.profs) == 0:
			p.err = errors.New("cpu profile: none was taken")
		default:
			p.merged, p.err = profile.Merge(p.profs)
		}
	})
	return p.merged, p.err
}

// fetchProfile takes one CPU profile of profileSeconds from addr.
func fetchProfile(ctx context.Context, addr string) (*profile.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, profileSeconds*time.Second+30*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, profileSeconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return nil, fmt.Errorf("cpu profile: %s: %s", resp.Status, b)
	}
	return profile.Parse(resp.Body)
}

// ortShare is the share of p's CPU time (its cpu/nanoseconds samples) in the scoring call
// into ONNX Runtime (underORT), the share under TreeSHAP's reason codes (computed in Go,
// after the scoring call: part of everything else), and p's sample count.
func ortShare(p *profile.Profile) (ort, reasons float64, samples int64, err error) {
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	if vi < 0 {
		return 0, 0, 0, errors.New("cpu profile: no cpu sample type")
	}
	var total, inORT, inReasons int64
	for _, s := range p.Sample {
		v := s.Value[vi]
		total += v
		samples += s.Value[0]
		switch {
		case underORT(s):
			inORT += v
		case hasFrame(s, treeshapPackage):
			inReasons += v
		}
	}
	if total == 0 {
		return 0, 0, samples, errors.New("cpu profile: no samples")
	}
	return float64(inORT) / float64(total), float64(inReasons) / float64(total), samples, nil
}

// underORT says whether s is in the scoring call into ONNX Runtime: its stack holds an
// onnxruntime_go frame and the scorer's.
func underORT(s *profile.Sample) bool {
	return hasFrame(s, ortPackage) && hasFrame(s, scorerScore)
}

// hasFrame says whether a function of s's stack is named prefix or starts with it.
func hasFrame(s *profile.Sample, prefix string) bool {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil && strings.HasPrefix(l.Function.Name, prefix) {
				return true
			}
		}
	}
	return false
}

// splitCPU splits cpu, the child's CPU time over n events, by p's ORT share.
func splitCPU(p *profile.Profile, cpu time.Duration, n, threads int) (*CPUSplit, error) {
	ort, reasons, samples, err := ortShare(p)
	if err != nil {
		return nil, err
	}
	total := float64(cpu.Microseconds()) / float64(n)
	return &CPUSplit{TotalMicros: total, ORTMicros: total * ort, OtherMicros: total * (1 - ort),
		ReasonsMicros: total * reasons, ORTShare: ort, Samples: samples, IntraOpThreads: threads}, nil
}

// writeProfile writes p to path, gzipped, as go tool pprof reads it.
func writeProfile(p *profile.Profile, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(p.Write(f), f.Close())
}
