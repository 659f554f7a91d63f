package config

import "testing"

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"200MiB": 200 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "4096": 4096, "10B": 10, "0": 0} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "1.5GiB", "200MB", "lots"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q): no error", in)
		}
	}
}
