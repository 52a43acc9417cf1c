package config

import (
	"encoding/json"
	"errors"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
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
		for _, r := range cfg.QUICRoutes {
			for _, e := range r.Entrypoints {
				if ep := cfg.Entrypoint(e); ep == nil || ep.HTTP3 == nil {
					t.Fatalf("quic_route %q names entrypoint %q without http3", r.Name, e)
				}
			}
			s := cfg.Service(r.Service)
			if s == nil || isHTTPService(s) || len(r.SNI) == 0 {
				t.Fatalf("quic_route %q: bad service %q or no sni", r.Name, r.Service)
			}
			for _, b := range s.Backends {
				if b.Scheme != SchemeTCP {
					t.Fatalf("quic_route %q: backend %+v", r.Name, b)
				}
			}
		}
		for _, s := range cfg.Services {
			checkService(t, s)
		}
		for _, e := range cfg.Entrypoints {
			if e.Network == NetworkTCP && (e.HTTP.MaxHeaderBytes < 1024 || e.HTTP.MaxConcurrentStreams < 1 || e.HTTP.WriteTimeout < 0) {
				t.Fatalf("entrypoint %q: bad HTTP settings %+v", e.Name, e.HTTP)
			}
			if e.Network == NetworkUDP && e.HTTP.Middlewares != nil {
				t.Fatalf("udp entrypoint %q has middlewares", e.Name)
			}
			checkMiddlewareNames(t, cfg, "entrypoint "+e.Name, e.HTTP.Middlewares)
			if h := e.HTTP3; h != nil && (e.Network != NetworkTCP || len(cfg.TLS.Certificates) == 0 ||
				h.MaxIncomingStreams < 1 || h.RetryThreshold < 0 || h.AdvertisedPort < 0 || h.AdvertisedPort > 65535) {
				t.Fatalf("entrypoint %q: bad http3 settings %+v", e.Name, h)
			}
		}
		if cfg.Middlewares == nil {
			t.Fatal("Config.Middlewares is nil")
		}
		for _, m := range cfg.Middlewares {
			checkMiddleware(t, cfg, m)
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
	case r.Middlewares != nil && len(r.Middlewares) == 0:
		t.Fatalf("http_route %q has an empty, non-nil middlewares list", r.Name)
	}
	checkMiddlewareNames(t, cfg, "http_route "+r.Name, r.Middlewares)
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
		bhttp := b.Scheme == SchemeHTTP || b.Scheme == SchemeHTTPS || b.Scheme == SchemeH2C || b.Scheme == SchemeH3
		if strings.Contains(b.Address, "://") || b.TLS && s.TLS == nil || bhttp != http ||
			b.TLS != (b.Scheme == SchemeTLS || b.Scheme == SchemeHTTPS || b.Scheme == SchemeH3) {
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

// checkMiddlewareNames checks that a middlewares list names existing
// middlewares, each once.
func checkMiddlewareNames(t *testing.T, cfg *Config, owner string, names []string) {
	t.Helper()
	for i, n := range names {
		found := false
		for _, m := range cfg.Middlewares {
			found = found || m.Name == n
		}
		if !found || slices.Index(names, n) < i {
			t.Fatalf("%s: middleware %q is unknown or listed twice", owner, n)
		}
	}
}

// checkMiddleware checks the invariants of a loaded middleware: exactly
// the pointer of its kind is set, and the values the runtime relies on.
func checkMiddleware(t *testing.T, cfg *Config, m Middleware) {
	t.Helper()
	v := reflect.ValueOf(m)
	set := 0
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		set++
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ","); tag != m.Kind {
			t.Fatalf("middleware %q of kind %q has %s set", m.Name, m.Kind, tag)
		}
	}
	if set != 1 {
		t.Fatalf("middleware %q has %d kinds set", m.Name, set)
	}
	switch {
	case m.RateLimit != nil && (m.RateLimit.Average < 1 || m.RateLimit.Burst < 1 || m.RateLimit.Period <= 0 || m.RateLimit.MaxKeys < 1 || m.RateLimit.Key == ""):
		t.Fatalf("middleware %q: bad rate_limit %+v", m.Name, m.RateLimit)
	case m.InFlight != nil && (m.InFlight.Max < 1 || m.InFlight.Key == ""):
		t.Fatalf("middleware %q: bad in_flight %+v", m.Name, m.InFlight)
	case m.BasicAuth != nil && (len(m.BasicAuth.Users) == 0 || m.BasicAuth.Realm == ""):
		t.Fatalf("middleware %q: bad basic_auth %+v", m.Name, m.BasicAuth)
	case m.ForwardAuth != nil && (m.ForwardAuth.Timeout <= 0 || !strings.HasPrefix(m.ForwardAuth.Address, "http")):
		t.Fatalf("middleware %q: bad forward_auth %+v", m.Name, m.ForwardAuth)
	case m.Compress != nil && (len(m.Compress.Encodings) == 0 || len(m.Compress.Types) == 0 || m.Compress.MinLength < 0):
		t.Fatalf("middleware %q: bad compress %+v", m.Name, m.Compress)
	case m.RedirectScheme != nil && (m.RedirectScheme.Scheme != "http" && m.RedirectScheme.Scheme != "https" || m.RedirectScheme.Port < 0 || m.RedirectScheme.Port > 65535):
		t.Fatalf("middleware %q: bad redirect_scheme %+v", m.Name, m.RedirectScheme)
	case m.IPAllow != nil && (len(m.IPAllow.CIDRs) == 0 || m.IPAllow.Depth < 0), m.IPDeny != nil && (len(m.IPDeny.CIDRs) == 0 || m.IPDeny.Depth != 0):
		t.Fatalf("middleware %q: bad ip filter", m.Name)
	case m.MaxBody != nil && m.MaxBody.Bytes <= 0:
		t.Fatalf("middleware %q: bad max_body %+v", m.Name, m.MaxBody)
	}
	var res []string
	if m.RedirectRegex != nil {
		res = append(res, m.RedirectRegex.Regex)
	}
	if m.ReplacePathRegex != nil {
		res = append(res, m.ReplacePathRegex.Regex)
	}
	for _, re := range res {
		if _, err := regexp.Compile(re); err != nil {
			t.Fatalf("middleware %q: regex does not compile: %v", m.Name, err)
		}
	}
	if h := m.Headers; h != nil {
		if h.CORS != nil && (len(h.CORS.AllowOrigins) == 0 || h.CORS.AllowCredentials && slices.Contains(h.CORS.AllowOrigins, "*")) {
			t.Fatalf("middleware %q: bad cors %+v", m.Name, h.CORS)
		}
		if h.HSTS != nil && h.HSTS.MaxAge <= 0 {
			t.Fatalf("middleware %q: bad hsts %+v", m.Name, h.HSTS)
		}
		for _, ops := range []HeaderOps{h.Request, h.Response} {
			for _, mp := range []map[string]string{ops.Set, ops.Add} {
				for k, v := range mp {
					if k != textproto.CanonicalMIMEHeaderKey(k) || !isToken(k) || strings.ContainsAny(v, "\r\n\x00") {
						t.Fatalf("middleware %q: header %q: %q", m.Name, k, v)
					}
				}
			}
		}
	}
	if ep := m.ErrorPages; ep != nil {
		s := cfg.Service(ep.Service)
		if s == nil || !isHTTPService(s) || len(ep.Statuses) == 0 || !strings.HasPrefix(ep.Path, "/") {
			t.Fatalf("middleware %q: bad error_pages %+v", m.Name, ep)
		}
		for _, r := range ep.Statuses {
			if r.Lo < 400 || r.Hi > 599 || r.Lo > r.Hi {
				t.Fatalf("middleware %q: bad status range %+v", m.Name, r)
			}
		}
	}
}
