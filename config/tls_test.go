package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDNSName(t *testing.T) {
	tests := []struct {
		in       string
		wildcard bool
		want     string // "" means an error containing wantErr
		wantErr  string
	}{
		{in: "Example.COM.", wildcard: true, want: "example.com"},
		{in: "*.Example.com", wildcard: true, want: "*.example.com"},
		{in: "*.com", wildcard: true, want: "*.com"},
		{in: "localhost", wildcard: true, want: "localhost"},
		{in: "_srv._tcp.example.com", wildcard: true, want: "_srv._tcp.example.com"},
		{in: "a-b.c-d.example", wildcard: true, want: "a-b.c-d.example"},
		{in: strings.Repeat("a", 63) + ".com", wildcard: true, want: strings.Repeat("a", 63) + ".com"},
		{in: strings.Repeat("a", 64) + ".com", wildcard: true, wantErr: "longer than 63"},
		{in: strings.Repeat("abcdefghi.", 25) + "comx", wildcard: true, wantErr: "254 characters long; the limit is 253"},
		{in: strings.Repeat("abcdefghi.", 25) + "com.", wildcard: true, want: strings.Repeat("abcdefghi.", 25) + "com"},
		{in: "*", wildcard: true, wantErr: "lone"},
		{in: "*.", wildcard: true, wantErr: "lone"},
		{in: "*.example.com", wildcard: false, wantErr: "wildcard is not a server name"},
		{in: "a*.example.com", wildcard: true, wantErr: "whole leftmost label"},
		{in: "x.*.example.com", wildcard: true, wantErr: "whole leftmost label"},
		{in: "*x.example.com", wildcard: true, wantErr: "whole leftmost label"},
		{in: "127.0.0.1", wildcard: true, wantErr: "RFC 6066"},
		{in: "::1", wildcard: true, wantErr: "RFC 6066"},
		{in: "[2001:db8::1]", wildcard: true, wantErr: "RFC 6066"},
		{in: "10.0.0.1", wildcard: false, wantErr: "not a DNS name"},
		{in: "", wildcard: true, wantErr: "empty"},
		{in: ".", wildcard: true, wantErr: "empty"},
		{in: "a..b", wildcard: true, wantErr: "empty label"},
		{in: ".a.b", wildcard: true, wantErr: "empty label"},
		{in: "a.b..", wildcard: true, wantErr: "empty label"},
		{in: "-a.b", wildcard: true, wantErr: "'-'"},
		{in: "a-.b", wildcard: true, wantErr: "'-'"},
		{in: "a b.c", wildcard: true, wantErr: "holds ' '"},
		{in: "a/b.c", wildcard: true, wantErr: "holds '/'"},
		{in: "é.example", wildcard: true, wantErr: "xn--"},
		{in: "example.123", wildcard: true, wantErr: "all digits"},
	}
	for _, tt := range tests {
		got, err := dnsName(tt.in, tt.wildcard)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("dnsName(%q, %v) = %q, %v; want %q", tt.in, tt.wildcard, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("dnsName(%q, %v) = %q, %v; want an error containing %q", tt.in, tt.wildcard, got, err, tt.wantErr)
		case err != nil:
			checkStyle(t, err.Error())
		}
	}
}

func TestMinVersion(t *testing.T) {
	for v, want := range map[string]string{
		"1.2":    "",
		"1.3":    "",
		"1.0":    `t.hcl:1:21: tls: min_version "1.0": TLS 1.0 and 1.1 are insecure and not supported; use "1.2" or "1.3"`,
		"1.1":    `t.hcl:1:21: tls: min_version "1.1": TLS 1.0 and 1.1 are insecure and not supported; use "1.2" or "1.3"`,
		"":       `t.hcl:1:21: tls: unknown min_version ""; use "1.2" or "1.3"`,
		"TLS1.3": `t.hcl:1:21: tls: unknown min_version "TLS1.3"; use "1.2" or "1.3"`,
	} {
		cfg, err := Parse("t.hcl", []byte(`tls { min_version = "`+v+`" }`))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", v, err)
		case want == "" && cfg.TLS.MinVersion != v:
			t.Errorf("%q: MinVersion = %q", v, cfg.TLS.MinVersion)
		case want != "" && (err == nil || err.Error() != want):
			t.Errorf("%q: error %v\nwant %s", v, err, want)
		}
	}
}

// TestTLSDefaults checks the defaults of the TLS settings.
func TestTLSDefaults(t *testing.T) {
	src := `
entrypoint "e" { address = ":1" }
tcp_route "plain" {
  entrypoints = ["e"]
  service     = "s"
}
tcp_route "sni" {
  entrypoints = ["e"]
  sni         = ["a.example"]
  service     = "p"
}
tcp_route "alpn" {
  entrypoints = ["e"]
  alpn        = ["h2"]
  service     = "p"
}
service "s" {
  backend "tls://Backend.Example.:1" {}
  backend "tls://192.0.2.1:1" {}
  backend "127.0.0.1:1" {}
}
service "p" {
  backend "127.0.0.1:2" {}
}
`
	cfg, err := Parse("d.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"min_version", cfg.TLS.MinVersion, DefaultTLSMinVersion},
		{"certificates", cfg.TLS.Certificates, []Certificate{}},
		{"tls without sni/alpn", cfg.TCPRoutes[0].TLS, TLSNone},
		{"tls with sni", cfg.TCPRoutes[1].TLS, TLSPassthrough},
		{"tls with alpn", cfg.TCPRoutes[2].TLS, TLSPassthrough},
		{"no sni", cfg.TCPRoutes[0].SNI == nil && cfg.TCPRoutes[0].ALPN == nil, true},
		{"service tls", s.TLS, &BackendTLS{}},
		{"backend tls", []bool{s.Backends[0].TLS, s.Backends[1].TLS, s.Backends[2].TLS}, []bool{true, true, false}},
		{"backend address", s.Backends[0].Address, "Backend.Example.:1"},
		{"server name from host", s.Backends[0].ServerName, "backend.example"},
		{"no server name for an IP", s.Backends[1].ServerName, ""},
		{"no server name for plain", s.Backends[2].ServerName, ""},
		{"no warnings", len(cfg.Warnings), 0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// TestTLSPathsPerFile checks that file paths resolve against the
// directory of the file that names them, and that absolute ones stay.
func TestTLSPathsPerFile(t *testing.T) {
	abs, err := filepath.Abs("testdata/certs/other.crt")
	if err != nil {
		t.Fatal(err)
	}
	absKey := strings.TrimSuffix(abs, ".crt") + ".key"
	a := Source{Filename: "testdata/certs/a.hcl", Src: []byte(`tls {
  certificate "a" {
    cert_file = "site.crt"
    key_file  = "site.key"
  }
  certificate "b" {
    cert_file = "` + abs + `"
    key_file  = "` + absKey + `"
  }
}`)}
	b := Source{Filename: "testdata/b.hcl", Src: []byte(`entrypoint "e" { address = ":1" }
tcp_route "r" {
  entrypoints = ["e"]
  service     = "s"
}
service "s" {
  backend "tls://x.example:1" {}
  tls {
    ca_file = "certs/ca.pem"
  }
}`)}
	cfg, err := ParseFiles(a, b)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.TLS.Certificates[0].CertFile, cfg.TLS.Certificates[0].KeyFile, cfg.TLS.Certificates[1].CertFile, cfg.TLS.Certificates[1].KeyFile, cfg.Services[0].TLS.CAFile}
	want := []string{"testdata/certs/site.crt", "testdata/certs/site.key", abs, absKey, "testdata/certs/ca.pem"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
	_, err = ParseFiles(a, a)
	if want := `testdata/certs/a.hcl:1:1: duplicate tls block; first defined at testdata/certs/a.hcl:1:1`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("two tls blocks: %v", err)
	}
}

// TestCertificateExpiry checks the warning against an injected clock: the
// test certificates are valid for 100 years, not forever.
func TestCertificateExpiry(t *testing.T) {
	src := []byte(`tls {
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
  }
}`)
	load := func(now time.Time) Diagnostics {
		t.Helper()
		env := osSources()
		env.now = func() time.Time { return now }
		cfg, err := parse([]Source{{Filename: "testdata/x.hcl", Src: src}}, env)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Warnings
	}
	if ws := load(time.Now()); len(ws) != 0 {
		t.Errorf("warnings today: %v", ws)
	}
	ws := load(time.Now().AddDate(200, 0, 0))
	if len(ws) != 1 || ws[0].Severity != SeverityWarning || !strings.Contains(ws[0].Message, `cert_file "testdata/certs/site.crt" expired on `) ||
		ws[0].Pos != (Pos{File: "testdata/x.hcl", Line: 3, Col: 17}) {
		t.Errorf("warnings in 200 years: %v", ws)
	}
}

// TestCertificateFilesReadOnce checks that a certificate file that changes
// after Load does not change the Config: it holds paths only.
func TestCertificateFilesReadOnce(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"site.crt", "site.key"} {
		b, err := os.ReadFile(filepath.Join("testdata/certs", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hcl := filepath.Join(dir, "c.hcl")
	if err := os.WriteFile(hcl, []byte(`tls {
  certificate "site" {
    cert_file = "site.crt"
    key_file  = "site.key"
  }
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(hcl)
	if err != nil {
		t.Fatal(err)
	}
	want := Certificate{Name: "site", CertFile: filepath.Join(dir, "site.crt"), KeyFile: filepath.Join(dir, "site.key"), Pos: Pos{File: hcl, Line: 2, Col: 15}}
	if !reflect.DeepEqual(cfg.TLS.Certificates, []Certificate{want}) {
		t.Errorf("certificates %+v, want %+v", cfg.TLS.Certificates, want)
	}
	if err := os.Remove(filepath.Join(dir, "site.key")); err != nil {
		t.Fatal(err)
	}
	_, err = Load(hcl)
	if err == nil || !strings.Contains(err.Error(), `key_file "`+filepath.Join(dir, "site.key")+`": cannot open: no such file or directory`) {
		t.Errorf("load without the key: %v", err)
	}
}
