package config

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const chartValues = "../../deploy/helm/streamscore/values.yaml"

// TestChartConfigIsTheReference: the Helm chart's values carry streamscore.yaml as it is
// in the repository (the ConfigMap renders it), its metrics port is the default one, and
// the pods' grace period outlasts the drains that SIGTERM starts.
func TestChartConfigIsTheReference(t *testing.T) {
	var values struct {
		Config  map[string]any `yaml:"config"`
		Metrics struct {
			Port int `yaml:"port"`
		} `yaml:"metrics"`
		Grace int `yaml:"terminationGracePeriodSeconds"`
	}
	raw, err := os.ReadFile(chartValues)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	var ref map[string]any
	raw, err = os.ReadFile(referenceConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for k := range mergeKeys(ref, values.Config) {
		if !reflect.DeepEqual(ref[k], values.Config[k]) {
			t.Errorf("%s: config.%s differs from streamscore.yaml's: copy it over (the chart renders its own)", chartValues, k)
		}
	}
	if want := strings.TrimPrefix(DefaultMetricsAddress, ":"); strconv.Itoa(values.Metrics.Port) != want {
		t.Errorf("metrics.port %d: the default is %s", values.Metrics.Port, want)
	}
	c, err := LoadWith(referenceConfig, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	drains := c.DrainTimeout + c.HTTP.DrainTimeout
	if c.HTTP.DrainTimeout == 0 {
		drains += 15 * time.Second // httpapi's default
	}
	if grace := time.Duration(values.Grace) * time.Second; grace <= drains {
		t.Errorf("terminationGracePeriodSeconds %v: want more than drain_timeout + http.drain_timeout (%v)", grace, drains)
	}
}

func mergeKeys(a, b map[string]any) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}
