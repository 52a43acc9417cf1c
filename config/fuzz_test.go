package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input panics, that failures are Diagnostics
// whose every entry has a position in the parsed file, and that successes
// hold only resolvable references.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.hcl")
	if err != nil {
		f.Fatal(err)
	}
	more, err := filepath.Glob("testdata/*/*.hcl")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range append(seeds, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		const name = "testdata/fuzz.hcl"
		cfg, err := Parse(name, src)
		if err != nil {
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("error %T is not Diagnostics: %v", err, err)
			}
			if cfg != nil || len(ds) == 0 || !ds.HasErrors() {
				t.Fatalf("bad failure: cfg=%v diags=%v", cfg, ds)
			}
			for _, d := range ds {
				if d.Pos.File != name || d.Pos.Line < 1 || d.Pos.Col < 1 || d.Message == "" {
					t.Fatalf("diagnostic without position or message: %#v", d)
				}
			}
			return
		}
		for _, r := range cfg.TCPRoutes {
			for _, e := range r.Entrypoints {
				if ep := cfg.Entrypoint(e); ep == nil || ep.Network != NetworkTCP {
					t.Fatalf("tcp_route %q names bad entrypoint %q", r.Name, e)
				}
			}
			if cfg.Service(r.Service) == nil {
				t.Fatalf("tcp_route %q names unknown service", r.Name)
			}
			switch {
			case r.TLS == TLSTerminate && len(cfg.TLS.Certificates) == 0:
				t.Fatalf("tcp_route %q terminates TLS without a certificate", r.Name)
			case r.TLS == TLSNone && (r.SNI != nil || r.ALPN != nil):
				t.Fatalf("tcp_route %q matches sni/alpn without TLS", r.Name)
			case r.TLS != TLSNone && r.TLS != TLSPassthrough && r.TLS != TLSTerminate:
				t.Fatalf("tcp_route %q has tls %q", r.Name, r.TLS)
			}
			for _, n := range r.SNI {
				if n == "" || n != strings.ToLower(n) || strings.HasSuffix(n, ".") || strings.Contains(n[1:], "*") {
					t.Fatalf("tcp_route %q has SNI %q", r.Name, n)
				}
			}
		}
		for _, r := range cfg.UDPRoutes {
			for _, e := range r.Entrypoints {
				if ep := cfg.Entrypoint(e); ep == nil || ep.Network != NetworkUDP {
					t.Fatalf("udp_route %q names bad entrypoint %q", r.Name, e)
				}
			}
		}
		for _, s := range cfg.Services {
			if len(s.Backends) == 0 {
				t.Fatalf("service %q has no backend", s.Name)
			}
			for _, b := range s.Backends {
				if strings.Contains(b.Address, "://") || b.TLS && s.TLS == nil {
					t.Fatalf("service %q: bad backend %+v", s.Name, b)
				}
			}
		}
		if _, err := json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
	})
}
