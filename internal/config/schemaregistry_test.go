package config

import (
	"strings"
	"testing"
)

// Bad schema-registry settings are refused at validation, every problem at once, each
// saying what to fix.
func TestSchemaRegistryProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(c *Config)
		wants []string
	}{
		{"unknown format", func(c *Config) { c.Schema.Format = "xml" }, []string{`schema.format "xml": want json, avro, protobuf or json-schema`}},
		{"avro without a registry", func(c *Config) { c.Schema.Format = "avro" }, []string{"schema_registry.url: set the Schema Registry's URL"}},
		{"unknown output format", func(c *Config) { c.Output.Format = "protobuf" }, []string{`output.format "protobuf": want json or avro`}},
		{"avro output without a registry", func(c *Config) { c.Output.Format = "avro" }, []string{"schema_registry.url: set"}},
		{"avro output, exactly-once", func(c *Config) {
			c.Output.Format, c.SchemaRegistry.URL, c.Delivery = "avro", "http://sr:8081", DeliveryExactlyOnce
			c.TransactionalID = "t"
		}, []string{"output.format avro is not supported with delivery exactly-once"}},
		{"several at once", func(c *Config) {
			c.Schema.Format = "protobuf"
			c.SchemaRegistry.URL = "sr:8081"
			c.SchemaRegistry.Username = "u"
			c.SchemaRegistry.Timeout = -1
		}, []string{"want an http:// or https:// URL", "set both username and password", "schema_registry.timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadWith(referenceConfig, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(c)
			_, err = c.Validate(Needs{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	c, err := LoadWith(referenceConfig, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c.Schema.Format, c.SchemaRegistry.URL = "avro", "http://127.0.0.1:1/apis/ccompat/v7"
	if _, err := c.Validate(Needs{}); err != nil {
		t.Fatalf("a complete avro config: %v", err)
	}
}

func TestSchemaRegistryPasswordFile(t *testing.T) {
	path := withKey(t, "schema_registry.password_file", knobPasswordFile)
	c, err := LoadWith(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.SchemaRegistry.Password != "from-a-file" {
		t.Fatalf("password %q", c.SchemaRegistry.Password)
	}
	if shown := c.Redacted(); shown.SchemaRegistry.Password != "<redacted>" {
		t.Fatal("the shown config prints the registry password")
	}
}

// TestOutputFormat: output.format reaches the drivers (with the registry it needs).
func TestOutputFormat(t *testing.T) {
	c, err := LoadWith(referenceConfig, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c.Output.Format, c.SchemaRegistry.URL = "avro", "http://sr:8081"
	cc, err := c.Validate(Needs{})
	if err != nil {
		t.Fatal(err)
	}
	if cc.OutputFormat() != "avro" || cc.SchemaRegistryOptions().URL != "http://sr:8081" {
		t.Fatalf("output format %q, registry %q", cc.OutputFormat(), cc.SchemaRegistryOptions().URL)
	}
	base, err := LoadWith(referenceConfig, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := base.Validate(Needs{})
	if err != nil {
		t.Fatal(err)
	}
	if bc.OutputFormat() != "json" {
		t.Fatalf("default output format %q", bc.OutputFormat())
	}
}
