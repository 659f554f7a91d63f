//go:build !integration

package drivers

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/internal/config"
)

// describedNames records the metric names of every collector registered through it.
type describedNames struct {
	prometheus.Registerer
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([a-zA-Z_:][a-zA-Z0-9_:]*)"`)

func (d *describedNames) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return d.Registerer.Register(c)
}

func (d *describedNames) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

// promqlExprs returns every PromQL expression of the shipped dashboard and alert rules.
func promqlExprs(t *testing.T) map[string]string {
	t.Helper()
	exprs := map[string]string{}
	raw, err := os.ReadFile("../../deploy/grafana/dashboards/streamscore.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs["panel "+p.Title+": "+tg.Expr] = tg.Expr
		}
	}
	raw, err = os.ReadFile("../../deploy/rules/streamscore.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("rules: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert+": "+r.Expr] = r.Expr
		}
	}
	return exprs
}

var metricRef = regexp.MustCompile(`\bstreamscore_[a-z0-9_]+`)

// TestDashboardAndRulesNameExportedMetrics: every metric that a PromQL expression of the
// dashboard or the alert rules reads is registered by a live job (registry and drift on)
// on the embedded broker: a renamed metric breaks this test, not a dashboard in
// production.
func TestDashboardAndRulesNameExportedMetrics(t *testing.T) {
	c := testConfig(t, embeddedBroker(t))
	createInputTopics(t, c, 3)
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := &describedNames{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := NewLive(ctx, cc, LiveDeps{Registry: reg, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	stop() // the job is built: every collector is registered; run it only to close it
	if err := l.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	exported := func(name string) bool {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && reg.names[base] {
				return true
			}
		}
		return false
	}
	var missing []string
	exprs := promqlExprs(t)
	for where, e := range exprs {
		for _, name := range metricRef.FindAllString(e, -1) {
			if !exported(name) {
				missing = append(missing, name+" in "+where)
			}
		}
	}
	sort.Strings(missing)
	if len(exprs) < 10 || len(missing) > 0 {
		t.Fatalf("%d expressions; metrics no live job exports:\n%s", len(exprs), strings.Join(missing, "\n"))
	}
}
