package config

import (
	"encoding/json"
	"errors"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
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
			if s := cfg.Service(r.Service); s == nil || isHTTPService(s) {
				t.Fatalf("tcp_route %q names unknown or HTTP service %q", r.Name, r.Service)
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
			if s := cfg.Service(r.Service); s == nil || isHTTPService(s) {
				t.Fatalf("udp_route %q names unknown or HTTP service %q", r.Name, r.Service)
			}
		}
		for _, r := range cfg.HTTPRoutes {
			checkHTTPRoute(t, cfg, r)
		}
		for _, s := range cfg.Services {
			checkService(t, s)
		}
		for _, e := range cfg.Entrypoints {
			if e.Network == NetworkTCP && (e.HTTP.MaxHeaderBytes < 1024 || e.HTTP.MaxConcurrentStreams < 1 || e.HTTP.WriteTimeout < 0) {
				t.Fatalf("entrypoint %q: bad HTTP settings %+v", e.Name, e.HTTP)
			}
		}
		if _, err := json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
	})
}

func isHTTPService(s *Service) bool {
	return s.Respond != nil || len(s.Backends) > 0 && s.Backends[0].Scheme != SchemeTCP && s.Backends[0].Scheme != SchemeTLS
}

// checkHTTPRoute checks the invariants of a loaded http_route.
func checkHTTPRoute(t *testing.T, cfg *Config, r HTTPRoute) {
	t.Helper()
	for _, e := range r.Entrypoints {
		if ep := cfg.Entrypoint(e); ep == nil || ep.Network != NetworkTCP {
			t.Fatalf("http_route %q names bad entrypoint %q", r.Name, e)
		}
	}
	if s := cfg.Service(r.Service); s == nil || !isHTTPService(s) {
		t.Fatalf("http_route %q names unknown or L4 service %q", r.Name, r.Service)
	}
	paths := 0
	for _, p := range []string{r.Path, r.PathPrefix, r.PathRegex} {
		if p != "" {
			paths++
		}
	}
	switch {
	case paths > 1:
		t.Fatalf("http_route %q has %d path matchers", r.Name, paths)
	case r.Path != "" && r.Path[0] != '/', r.PathPrefix != "" && r.PathPrefix[0] != '/':
		t.Fatalf("http_route %q has a path without a leading slash", r.Name)
	case len(r.Middlewares) > 0:
		t.Fatalf("http_route %q has middlewares", r.Name)
	}
	if r.PathRegex != "" {
		if _, err := regexp.Compile(r.PathRegex); err != nil {
			t.Fatalf("http_route %q: path_regex does not compile: %v", r.Name, err)
		}
	}
	for _, h := range r.Hosts {
		if h == "" || h != strings.ToLower(h) || strings.HasSuffix(h, ".") || strings.Contains(h[1:], "*") || strings.ContainsAny(h, "[]") {
			t.Fatalf("http_route %q has host %q", r.Name, h)
		}
	}
	for _, m := range r.Methods {
		if m == "" || m != strings.ToUpper(m) || !isToken(m) {
			t.Fatalf("http_route %q has method %q", r.Name, m)
		}
	}
	for k, v := range r.Headers {
		if k != textproto.CanonicalMIMEHeaderKey(k) || !isToken(k) || strings.ContainsAny(v, "\r\n\x00") {
			t.Fatalf("http_route %q has header %q: %q", r.Name, k, v)
		}
	}
}

// checkService checks the invariants of a loaded service.
func checkService(t *testing.T, s Service) {
	t.Helper()
	if s.Respond != nil {
		if len(s.Backends) > 0 || s.TLS != nil || !reflect.ValueOf(s.HTTP).IsZero() || s.Respond.Status < 100 || s.Respond.Status > 599 {
			t.Fatalf("respond service %q: %+v", s.Name, s)
		}
		return
	}
	if len(s.Backends) == 0 {
		t.Fatalf("service %q has no backend", s.Name)
	}
	http := isHTTPService(&s)
	for _, b := range s.Backends {
		bhttp := b.Scheme == SchemeHTTP || b.Scheme == SchemeHTTPS || b.Scheme == SchemeH2C
		if strings.Contains(b.Address, "://") || b.TLS && s.TLS == nil || bhttp != http ||
			b.TLS != (b.Scheme == SchemeTLS || b.Scheme == SchemeHTTPS) {
			t.Fatalf("service %q: bad backend %+v", s.Name, b)
		}
	}
	switch h := s.HTTP; {
	case !http && !reflect.ValueOf(h).IsZero():
		t.Fatalf("L4 service %q has HTTP settings %+v", s.Name, h)
	case !http && (s.Balancer == BalancerP2C || s.Balancer == BalancerHash):
		t.Fatalf("L4 service %q has balancer %q", s.Name, s.Balancer)
	case http && (h.ResponseHeaderTimeout <= 0 || h.IdleConnTimeout <= 0 || h.MaxIdleConnsPerBackend <= 0 || h.FlushInterval < 0):
		t.Fatalf("service %q has bad HTTP settings %+v", s.Name, h)
	case http && (h.HashKey != "") != (s.Balancer == BalancerHash):
		t.Fatalf("service %q has hash_key %q with balancer %q", s.Name, h.HashKey, s.Balancer)
	case h.HealthCheck != nil && (h.HealthCheck.Timeout >= h.HealthCheck.Interval || h.HealthCheck.ExpectStatusLo < 100 || h.HealthCheck.ExpectStatusHi > 599):
		t.Fatalf("service %q has bad health_check %+v", s.Name, h.HealthCheck)
	case h.CircuitBreaker != nil && (h.CircuitBreaker.FailureRatio <= 0 || h.CircuitBreaker.FailureRatio > 1):
		t.Fatalf("service %q has bad circuit_breaker %+v", s.Name, h.CircuitBreaker)
	case h.Retry != nil && h.Retry.Attempts < 1:
		t.Fatalf("service %q has bad retry %+v", s.Name, h.Retry)
	}
}
