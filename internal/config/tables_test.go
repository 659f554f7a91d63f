package config

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/pipeline"
)

// merchantsTable is issue 28's example table, as YAML would give it.
func merchantsTable() map[string]any {
	return map[string]any{
		"name": "merchants", "topic": "merchants", "key_field": "terminal_id", "event_time": "valid_from",
		"dead_letter": "merchants.dlq",
		"fields": []any{
			map[string]any{"name": "terminal_id", "type": "int", "required": true, "min": 0},
			map[string]any{"name": "valid_from", "type": "time", "required": true},
			map[string]any{"name": "risk_tier", "type": "int", "required": true, "min": 0},
			map[string]any{"name": "category", "type": "string"},
		},
	}
}

// withTables is the reference config with the merchants table and extra features.
func withTables(t *testing.T, features string) *Config {
	t.Helper()
	c, err := LoadWith(withKey(t, "tables", []any{merchantsTable()}), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var extra []pipeline.Feature
	if err := yaml.Unmarshal([]byte(features), &extra); err != nil {
		t.Fatal(err)
	}
	c.Features = append(c.Features, extra...)
	return c
}

func TestLookupFeaturesCompile(t *testing.T) {
	c := withTables(t, `
- {name: MERCHANT_RISK_TIER, lookup: {table: merchants, key: terminal_id, field: risk_tier, default: 0}}
- {name: MERCHANT_CATEGORY, lookup: {table: merchants, key: terminal_id, field: category, transform: one_hot, vocabulary: [grocery, travel]}}
`)
	cc, err := c.Validate(Needs{})
	if err != nil {
		t.Fatal(err)
	}
	names := cc.Features.Names()
	want := []string{"MERCHANT_RISK_TIER", "MERCHANT_CATEGORY_GROCERY", "MERCHANT_CATEGORY_TRAVEL"}
	if got := names[len(names)-3:]; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("lookup columns %v, want %v", got, want)
	}
	if o := cc.TableOptions(Bounded); o["merchants"].Topic != "merchants" || !o["merchants"].Bounded {
		t.Fatalf("table readers %+v", o)
	}
	if d := cc.TableDeadLetters(); len(d) != 1 || d[0] != "merchants.dlq" {
		t.Fatalf("table dead letters %v", d)
	}
}

// TestLookupConfigErrorsSayWhatToFix: a lookup naming a missing table or field, or a
// table with bad keys, fails at start with what to fix.
func TestLookupConfigErrorsSayWhatToFix(t *testing.T) {
	for _, tc := range []struct{ features, want string }{
		{`[{name: X, lookup: {table: shops, key: terminal_id, field: risk_tier}}]`, `lookup.table "shops" is not a table: add it under tables: (tables listed: [merchants])`},
		{`[{name: X, lookup: {table: merchants, key: terminal_id, field: tier}}]`, `lookup.field "tier" is not a field of table merchants`},
		{`[{name: X, lookup: {table: merchants, key: terminal, field: risk_tier}}]`, `lookup.key "terminal" is not a field of the event schema`},
		{`[{name: X, lookup: {table: merchants, key: terminal_id, field: category}}]`, `needs a transform`},
		{`[{name: X, lookup: {table: merchants, key: terminal_id, field: risk_tier, transform: age_days}}]`, `age_days needs a time field`},
		{`[{name: X, lookup: {table: merchants, key: terminal_id, field: risk_tier, defualt: 1}}]`, `unknown key "defualt"`},
		{`[{name: X, lookup: {table: merchants, key: terminal_id, field: risk_tier}, transfrom: log1p}]`, `field transfrom not found`},
		{`[{name: X, field: tx_amount, transfrom: log1p}]`, `field transfrom not found`},
	} {
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s: panic %v", tc.features, r)
				}
			}()
			var extra []pipeline.Feature
			if err = yaml.Unmarshal([]byte(tc.features), &extra); err == nil {
				c := withTables(t, "[]")
				c.Features = append(c.Features, extra...)
				_, err = c.Validate(Needs{})
			}
		}()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", tc.features, err, tc.want)
		}
	}
	c := withTables(t, "[]")
	c.Tables[0].KeyField = "terminal"
	c.Tables = append(c.Tables, pipeline.TableConfig{Name: "customers", Topic: c.Topics.Input[0], EventTime: "since",
		KeyField: "customer_id", MaxRows: -1, Fields: []pipeline.Field{{Name: "customer_id", Type: pipeline.TypeInt, Required: true}}})
	_, err := c.Validate(Needs{})
	for _, want := range []string{`tables.merchants.key_field "terminal" is not one of the table's fields`, "tables.customers.max_rows -1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestLookupModelConfigValidates: testdata/model/fraud-lookup.yaml, the config of the model
// trained with lookups, is valid and has the model's 20 inputs.
func TestLookupModelConfigValidates(t *testing.T) {
	c, err := LoadWith("../../testdata/model/fraud-lookup.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Validate(Needs{Model: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := cc.Features.Len(); n != 20 || len(cc.Features.UsedTables()) != 2 {
		t.Fatalf("%d features on %d tables, want 20 on 2", n, len(cc.Features.UsedTables()))
	}
}
