package config

import (
	"testing"
	"time"
)

// TestParseDuration: Go durations, plus the day unit nginx, HAProxy and
// Caddy users write ("30d").
func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "2h1d", want: 26 * time.Hour},
		{in: "-1d", want: -24 * time.Hour},
		{in: "365d", want: 8760 * time.Hour},
		{in: "d", bad: true},
		{in: "1dd", bad: true},
		{in: "1..5d", bad: true},
		{in: "1 d", bad: true},
		{in: "10 days", bad: true},
		{in: "99999999999d", bad: true}, // beyond time.Duration
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseDuration(tc.in)
			switch {
			case tc.bad && err == nil:
				t.Fatalf("parseDuration(%q) = %v, want an error", tc.in, got)
			case !tc.bad && err != nil:
				t.Fatalf("parseDuration(%q): %v", tc.in, err)
			case !tc.bad && got != tc.want:
				t.Fatalf("parseDuration(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestDurationDaysInConfig: a day count is accepted wherever a duration is.
func TestDurationDaysInConfig(t *testing.T) {
	cfg, err := Parse("d.hcl", []byte(`
entrypoint "e" { address = ":1" }
tcp_route "r" {
  entrypoints = ["e"]
  service     = "s"
}
service "s" {
  fail_timeout = "1d"
  backend "127.0.0.1:1" {}
}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Services[0].FailTimeout; got != 24*time.Hour {
		t.Fatalf("fail_timeout = %v, want 24h", got)
	}
}
