package bench

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
)

func TestParseBackfillSummary(t *testing.T) {
	out := "some notice\n" + `{"events":1000,"predictions":998,"dead_lettered":2,"seconds":0.5,"events_per_second":2000,"mean_batch_size":250,"out":"topic:bf","model":"fraud","model_version":"3f2a"}` + "\n\n"
	s, err := parseBackfillSummary([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := drivers.BackfillSummary{Events: 1000, Predictions: 998, DeadLettered: 2, Seconds: 0.5, EventsPerSecond: 2000, MeanBatch: 250, Out: "topic:bf", Model: "fraud", ModelVersion: "3f2a"}
	if *s != want {
		t.Errorf("summary %+v, want %+v", *s, want)
	}
	for name, bad := range map[string]string{
		"empty":       "",
		"not json":    "backfilled 1000 events\n",
		"no rate":     `{"events":0,"seconds":0}`,
		"json object": `{"events":"many"}`,
	} {
		if _, err := parseBackfillSummary([]byte(bad)); err == nil {
			t.Errorf("%s: %q parsed without error", name, bad)
		}
	}
}

// TestWriteConfig: the child's config is the bench's, with the model path made absolute
// so that the child may run from anywhere.
func TestWriteConfig(t *testing.T) {
	c := config.Default()
	c.Topics.Input = []string{"tx-bench-x"}
	c.Group = "g-bench-x"
	c.Model.Path = "testdata/model.onnx"
	path, err := writeConfig(&c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	back, err := config.LoadWith(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if back.Group != "g-bench-x" || len(back.Topics.Input) != 1 || back.Topics.Input[0] != "tx-bench-x" {
		t.Errorf("group %q, input %v: not the bench's", back.Group, back.Topics.Input)
	}
	if !filepath.IsAbs(back.Model.Path) || !strings.HasSuffix(back.Model.Path, "testdata/model.onnx") {
		t.Errorf("model path %q, want an absolute path to testdata/model.onnx", back.Model.Path)
	}
}

// TestCatchUpConfigProfile: --pprof reaches the catch-up children's config file (metrics
// address and profiler on), and without it they run with neither.
func TestCatchUpConfigProfile(t *testing.T) {
	c := config.Default()
	c.Model.Path = "testdata/model.onnx"
	c.Metrics.Address = "" // as topicsFor leaves it
	for _, tc := range []struct {
		profile string
		pprof   bool
	}{{"127.0.0.1:7599", true}, {"", false}} {
		path, err := writeConfig(catchUpConfig(&c, Plan{Profile: tc.profile}), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.LoadWith(path, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		if back.Metrics.Address != tc.profile || back.Metrics.PProf != tc.pprof {
			t.Errorf("--pprof %q: child metrics address %q, pprof %v", tc.profile, back.Metrics.Address, back.Metrics.PProf)
		}
	}
	if c.Metrics.PProf || c.Metrics.Address != "" {
		t.Error("catchUpConfig changed the bench's own config")
	}
}
