package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// OutputConfig is output: how predictions and alerts are encoded.
type OutputConfig struct {
	// Format is json (default) or avro: the Confluent wire format, with the prediction
	// schema registered in schema_registry under <topic>-value (TopicNameStrategy).
	Format string `yaml:"format"`
}

// OutputFormat is output.format, defaulted: json or avro.
func (c *Compiled) OutputFormat() string {
	if c.Output.Format == "" {
		return pipeline.FormatJSON
	}
	return c.Output.Format
}

// usesSchemaRegistry reports whether schema.format needs schema_registry.
func (c *Config) usesSchemaRegistry() bool {
	return c.Schema.Format != "" && c.Schema.Format != pipeline.FormatJSON || c.Output.Format == pipeline.FormatAvro
}

// checkSchemaRegistry checks schema_registry when schema.format needs it (schema.format
// itself is checked with the schema).
func (c *Config) checkSchemaRegistry(p *problems) {
	sr := &c.SchemaRegistry
	switch c.Output.Format {
	case "", pipeline.FormatJSON:
	case pipeline.FormatAvro:
		if c.Delivery == DeliveryExactlyOnce {
			p.add("output.format avro is not supported with delivery exactly-once yet: use output.format json, or at-least-once")
		}
	default:
		p.add("output.format %q: want json or avro", c.Output.Format)
	}
	if !c.usesSchemaRegistry() {
		return // `produce --format` may still use it; its client checks it then
	}
	for _, err := range sr.Validate() {
		p.err(fmt.Errorf("schema.format %s / output.format %s: %w", c.Schema.Format, c.Output.Format, err))
	}
}

// SchemaRegistryOptions is the Schema Registry client's configuration: the one place
// that copies schema_registry into it (with the password read from password_file).
func (c *Compiled) SchemaRegistryOptions() topics.SchemaRegistryConfig { return c.SchemaRegistry }

// readRegistrySecret reads schema_registry.password_file into the password, as
// readSecrets does for SASL.
func (c *Config) readRegistrySecret() error {
	sr := &c.SchemaRegistry
	if sr.PasswordFile == "" {
		return nil
	}
	if sr.Password != "" {
		return errors.New("schema_registry: both password and password_file are set: keep one")
	}
	raw, err := os.ReadFile(c.Resolve(sr.PasswordFile))
	if err != nil {
		return fmt.Errorf("schema_registry.password_file: %w (point it at a readable file holding the password)", err)
	}
	pw := strings.TrimRight(string(raw), "\r\n")
	if pw == "" {
		return fmt.Errorf("schema_registry.password_file %s is empty: write the password into it", sr.PasswordFile)
	}
	sr.Password = pw
	return nil
}
