package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestHTTPDefaults checks that HTTP settings get every documented default,
// and only where they apply.
func TestHTTPDefaults(t *testing.T) {
	src := `
entrypoint "web" { address = ":1" }
entrypoint "dns" {
  address = ":2"
  network = "udp"
}
http_route "api" {
  entrypoints = ["web"]
  service     = "api"
}
http_route "hello" {
  entrypoints = ["web"]
  path        = "/hello"
  service     = "hello"
}
udp_route "dns" {
  entrypoints = ["dns"]
  service     = "dns"
}
service "api" {
  balancer = "hash"
  backend "http://127.0.0.1:1" {}
  sticky {}
  health_check {}
  circuit_breaker {}
  retry {}
}
service "hello" {
  respond {}
}
service "dns" {
  backend "127.0.0.1:53" {}
}
`
	cfg, err := Parse("d.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	web, dns := cfg.Entrypoint("web"), cfg.Entrypoint("dns")
	api, hello, l4 := cfg.Service("api"), cfg.Service("hello"), cfg.Service("dns")
	h := api.HTTP
	checks := []struct {
		name      string
		got, want any
	}{
		{"max_header_bytes", web.HTTP.MaxHeaderBytes, 65536},
		{"max_concurrent_streams", web.HTTP.MaxConcurrentStreams, 250},
		{"write timeout", web.HTTP.WriteTimeout, time.Duration(0)},
		{"trusted_proxies", web.HTTP.TrustedProxies == nil, true},
		{"udp entrypoint HTTP", dns.HTTP, HTTPSettings{}},
		{"route priority", cfg.HTTPRoutes[0].Priority, 0},
		{"route middlewares", cfg.HTTPRoutes[0].Middlewares == nil, true},
		{"scheme", api.Backends[0].Scheme, SchemeHTTP},
		{"hash_key", h.HashKey, HashClientIP},
		{"pass_host", h.PassHost, true},
		{"response_header_timeout", h.ResponseHeaderTimeout, 30 * time.Second},
		{"idle_conn_timeout", h.IdleConnTimeout, 90 * time.Second},
		{"max_idle_conns_per_backend", h.MaxIdleConnsPerBackend, 256},
		{"flush_interval", h.FlushInterval, time.Duration(0)},
		{"sticky", *h.Sticky, Sticky{Cookie: "proxynow_sticky", HTTPOnly: true}},
		{"health_check", *h.HealthCheck, HealthCheck{Path: "/", Method: "GET", Interval: 5 * time.Second, Timeout: 2 * time.Second,
			ExpectStatusLo: 200, ExpectStatusHi: 399, UnhealthyAfter: 2, HealthyAfter: 1}},
		{"circuit_breaker", *h.CircuitBreaker, CircuitBreaker{FailureRatio: 0.5, MinRequests: 20, Interval: 10 * time.Second,
			OpenTimeout: 30 * time.Second, FailureStatusLo: 500, FailureStatusHi: 599}},
		{"retry", *h.Retry, Retry{Attempts: 2}},
		{"respond", *hello.Respond, Respond{Status: 200}},
		{"respond backends", hello.Backends, []Backend{}},
		{"respond balancer", hello.Balancer, ""},
		{"respond timeouts", hello.ConnectTimeout + hello.FailTimeout, time.Duration(0)},
		{"respond HTTP", hello.HTTP, HTTPService{}},
		{"L4 HTTP", l4.HTTP, HTTPService{}},
		{"L4 scheme", l4.Backends[0].Scheme, SchemeTCP},
		{"no warnings", len(cfg.Warnings), 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %+v, want %+v", c.got, c.want)
			}
		})
	}
}

// TestHealthCheckTimeoutFollowsShortInterval checks that a health_check
// with only a short interval is valid: the unwritten timeout becomes half
// the interval instead of a 2s default that the interval check refuses.
// A written timeout is kept, and refused when not shorter than the interval.
func TestHealthCheckTimeoutFollowsShortInterval(t *testing.T) {
	parse := func(body string) (*Config, error) {
		return Parse("h.hcl", []byte(`
entrypoint "web" { address = ":1" }
http_route "r" {
  entrypoints = ["web"]
  service     = "s"
}
service "s" {
  backend "http://127.0.0.1:1" {}
  health_check {
`+body+`
  }
}
`))
	}
	for _, c := range []struct {
		body string
		want time.Duration
	}{
		{`interval = "1s"`, 500 * time.Millisecond},
		{`interval = "4s"`, 2 * time.Second},
		{`interval = "3s"`, 1500 * time.Millisecond},
		{`interval = "1m"`, 2 * time.Second},
		{"interval = \"1s\"\n timeout = \"900ms\"", 900 * time.Millisecond},
	} {
		cfg, err := parse(c.body)
		if err != nil {
			t.Errorf("%s: %v", c.body, err)
			continue
		}
		if got := cfg.Service("s").HTTP.HealthCheck.Timeout; got != c.want {
			t.Errorf("%s: timeout %v, want %v", c.body, got, c.want)
		}
	}
	_, err := parse("interval = \"1s\"\n timeout = \"1s\"")
	if err == nil || !strings.Contains(err.Error(), "timeout 1s must be shorter than interval 1s") {
		t.Errorf("timeout = interval: got %v", err)
	}
}

func TestHostName(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "API.Example.com.", want: "api.example.com"},
		{in: "*.Example.com", want: "*.example.com"},
		{in: "localhost", want: "localhost"},
		{in: "10.0.0.1", want: "10.0.0.1"},
		{in: "[2001:DB8::1]", want: "2001:db8::1"},
		{in: "2001:db8:0::1", want: "2001:db8::1"},
		{in: "example.com:80", wantErr: `without the port; write "example.com"`},
		{in: "10.0.0.1:80", wantErr: `write "10.0.0.1"`},
		{in: "[::1]:80", wantErr: `write "[::1]"`},
		{in: "[::1", wantErr: "missing ']'"},
		{in: "[10.0.0.1]", wantErr: "not an IPv6 address"},
		{in: "fe80::1%eth0", wantErr: "zone"},
		{in: "*", wantErr: "leave hosts out"},
		{in: "*.", wantErr: "leave hosts out"},
		{in: "a.*.com", wantErr: "whole leftmost label"},
		{in: "", wantErr: "empty"},
		{in: "a b.com", wantErr: "holds ' '"},
	}
	for _, tt := range tests {
		got, err := hostName(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("hostName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("hostName(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
		case err != nil:
			checkStyle(t, err.Error())
		}
	}
}

func TestParseStatusRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"200", 200, 200, true},
		{"200-399", 200, 399, true},
		{"100-599", 100, 599, true},
		{" 500 - 599 ", 500, 599, true},
		{"099", 0, 0, false},
		{"600", 0, 0, false},
		{"2xx", 0, 0, false},
		{"399-200", 0, 0, false},
		{"200-", 0, 0, false},
		{"-200", 0, 0, false},
		{"200-300-400", 0, 0, false},
		{"+200", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, err := parseStatusRange(tt.in)
		if (err == nil) != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("parseStatusRange(%q) = %d, %d, %v; want %d, %d, ok=%v", tt.in, lo, hi, err, tt.lo, tt.hi, tt.ok)
		}
	}
}

func TestIsToken(t *testing.T) {
	for _, s := range []string{"GET", "X-Canary", "a!#$%&'*+-.^_`|~z", "0"} {
		if !isToken(s) {
			t.Errorf("isToken(%q) = false", s)
		}
	}
	for _, s := range []string{"", "A B", "a:b", "a\x00", "é", "a\"", "(x)", "a/b", "a;b"} {
		if isToken(s) {
			t.Errorf("isToken(%q) = true", s)
		}
	}
}

// TestHTTPRoutesCountAsUsers checks that an entrypoint and a service used
// only by http_routes draw no "not used" warning.
func TestHTTPRoutesCountAsUsers(t *testing.T) {
	cfg, err := Load("testdata/http_minimal.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}
