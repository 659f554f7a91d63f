package config

import (
	"reflect"
	"strconv"
	"testing"
)

// TestEveryRunFlagReachesItsComponent: each flag of `streamscore run` that overrides a key
// reaches the component that key reaches (the knob table's probe), over the file and the
// environment, and a flag not given leaves the key alone.
func TestEveryRunFlagReachesItsComponent(t *testing.T) {
	str := func(s string) *string { return &s }
	flags := map[string]func(v string) RunFlags{
		"group":           func(v string) RunFlags { return RunFlags{Group: str(v)} },
		"model.path":      func(v string) RunFlags { return RunFlags{ModelPath: str(v)} },
		"model.device":    func(v string) RunFlags { return RunFlags{Device: str(v)} },
		"metrics.address": func(v string) RunFlags { return RunFlags{MetricsAddress: str(v)} },
		"http.address":    func(v string) RunFlags { return RunFlags{HTTPAddress: str(v)} },
		"threshold": func(v string) RunFlags {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return RunFlags{Threshold: &f}
		},
	}
	seen := 0
	for _, k := range knobs() {
		flag, ok := flags[k.key]
		if !ok {
			continue
		}
		seen++
		t.Run(k.key, func(t *testing.T) {
			// the environment sets another value: the flag must win over it
			other := "from-the-environment"
			if k.key == "threshold" {
				other = "0.9"
			}
			env := func(name string) (string, bool) {
				if name == k.env {
					return other, true
				}
				return "", false
			}
			c, err := LoadWith(referenceConfig, env)
			if err != nil {
				t.Fatal(err)
			}
			c.ApplyRunFlags(flag(k.envV))
			cc, err := c.Validate(Needs{Kafka: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := k.probe(t, cc); !reflect.DeepEqual(got, k.want) {
				t.Fatalf("the flag for %s = %s reached the component as %v, want %v", k.key, k.envV, got, k.want)
			}
			base, err := LoadWith(referenceConfig, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			before := *base
			base.ApplyRunFlags(RunFlags{})
			if !reflect.DeepEqual(before, *base) {
				t.Fatal("no flags given changed the config")
			}
		})
	}
	if seen != len(flags) {
		t.Fatalf("%d of %d run flags have a row in the knob table", seen, len(flags))
	}
}
