package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestPasswordFileIsReadAndNeverPrinted: kafka.sasl.password_file fills the password at
// load, relative to the config file, and neither `config check`'s YAML (Redacted) nor a
// %v or %+v of the config shows it.
func TestPasswordFileIsReadAndNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	const secret = "s3cr3t-Pa55"
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "streamscore.yaml")
	if err := os.WriteFile(cfg, []byte("kafka:\n  sasl: {mechanism: scram-sha-512, username: u, password_file: password}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadWith(cfg, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.SASL.Password != secret {
		t.Fatalf("password %q, want the file's %q without its newline", c.Kafka.SASL.Password, secret)
	}
	shown := c.Redacted()
	out, err := yaml.Marshal(&shown)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"config check": string(out), "%v": fmt.Sprintf("%v", *c), "%+v": fmt.Sprintf("%+v", *c), "%#v": fmt.Sprintf("%#v", c.Kafka)} {
		if strings.Contains(text, secret) {
			t.Errorf("%s prints the password:\n%s", name, text)
		}
	}
	if !strings.Contains(string(out), "<redacted>") {
		t.Errorf("config check does not say the password is set:\n%s", out)
	}
}

// TestPasswordFileProblemsSayWhatToFix: both a password and a file, a missing file, an
// empty file.
func TestPasswordFileProblemsSayWhatToFix(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sasl string
		env  map[string]string
		want string
	}{
		{"both", "{password: p, password_file: " + empty + "}", nil, "keep one"},
		{"file and variable", "{password_file: " + empty + "}", map[string]string{"STREAMSCORE_SASL_PASSWORD": "p"}, "keep one"},
		{"missing", "{password_file: " + filepath.Join(dir, "nope") + "}", nil, "point it at a readable file"},
		{"empty", "{password_file: " + empty + "}", nil, "write the password into it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "streamscore.yaml")
			if err := os.WriteFile(cfg, []byte("kafka:\n  sasl: "+tc.sasl+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadWith(cfg, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "password_file") {
				t.Fatalf("got %v, want an error naming password_file and saying %q", err, tc.want)
			}
		})
	}
}

// TestMetricsChecks: pprof without a server, and an address that is not host:port.
func TestMetricsChecks(t *testing.T) {
	c, err := LoadWith(referenceConfig, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(Default().Metrics.Address, ":7591") || Default().Metrics.PProf {
		t.Fatalf("defaults %+v: want :7591 with pprof off", Default().Metrics)
	}
	c.Metrics = MetricsConfig{Address: "", PProf: true}
	if _, err := c.Validate(Needs{}); err == nil || !strings.Contains(err.Error(), "metrics.pprof: true needs metrics.address") {
		t.Fatalf("pprof without an address: %v", err)
	}
	c.Metrics = MetricsConfig{Address: "localhost"}
	if _, err := c.Validate(Needs{}); err == nil || !strings.Contains(err.Error(), `metrics.address "localhost": want host:port`) {
		t.Fatalf("address without a port: %v", err)
	}
}
