package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/proxynow/proxynow/config"
)

// seen is what the next handler got.
type seen struct {
	path, raw, escaped, uri string
	header                  http.Header
	called                  bool
}

func runPath(t testing.TB, m *config.Middleware, target string) (seen, *http.Request) {
	t.Helper()
	mw, err := Build(m, Env{})
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s = seen{path: r.URL.Path, raw: r.URL.RawPath, escaped: r.URL.EscapedPath(), uri: r.RequestURI, header: r.Header, called: true}
	}))
	req := httptest.NewRequest(http.MethodGet, target, nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !s.called {
		t.Fatal("next handler not called")
	}
	return s, req
}

func TestPathRewrites(t *testing.T) {
	strip := func(p ...string) *config.Middleware {
		return &config.Middleware{Name: "m", Kind: config.MWStripPrefix, StripPrefix: &config.StripPrefix{Prefixes: p}}
	}
	add := func(p string) *config.Middleware {
		return &config.Middleware{Name: "m", Kind: config.MWAddPrefix, AddPrefix: &config.AddPrefix{Prefix: p}}
	}
	replace := func(p string) *config.Middleware {
		return &config.Middleware{Name: "m", Kind: config.MWReplacePath, ReplacePath: &config.ReplacePath{Path: p}}
	}
	replaceRe := func(re, repl string) *config.Middleware {
		return &config.Middleware{Name: "m", Kind: config.MWReplacePathRegex, ReplacePathRegex: &config.ReplacePathRegex{Regex: re, Replacement: repl}}
	}
	for _, tc := range []struct {
		name     string
		m        *config.Middleware
		target   string
		path     string // Path seen
		escaped  string // EscapedPath seen; "" means path
		uri      string // RequestURI seen; "" means escaped (no query)
		hdr      string // header checked
		hdrValue string
	}{
		{name: "strip exact", m: strip("/api"), target: "/api", path: "/", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip slash", m: strip("/api"), target: "/api/", path: "/", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip below", m: strip("/api"), target: "/api/users/1?x=1", path: "/users/1", uri: "/users/1?x=1", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip not apix", m: strip("/api"), target: "/apix/users", path: "/apix/users", hdr: "X-Forwarded-Prefix"},
		{name: "strip trailing slash prefix", m: strip("/api/"), target: "/api/x", path: "/x", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip first matching", m: strip("/v1", "/api", "/api/v2"), target: "/api/v2/x", path: "/v2/x", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip keeps escapes", m: strip("/api"), target: "/api/a%2Fb/c%20d", path: "/a/b/c d", escaped: "/a%2Fb/c%20d", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip escaped prefix", m: strip("/api"), target: "/%61pi/a%2Fb", path: "/a/b", escaped: "/a%2Fb", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip at escaped slash", m: strip("/api"), target: "/api%2Fx", path: "/x", escaped: "/x", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip at lower-case escaped slash", m: strip("/api"), target: "/api%2fx%2fy", path: "/x/y", escaped: "/x%2fy", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip at escaped slash keeps later escapes", m: strip("/api"), target: "/api%2Fa%2Fb", path: "/a/b", escaped: "/a%2Fb", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip to an escaped slash alone", m: strip("/api"), target: "/api%2F", path: "/", escaped: "/", hdr: "X-Forwarded-Prefix", hdrValue: "/api"},
		{name: "strip not inside an escaped segment", m: strip("/api"), target: "/api%2Ex", path: "/api.x", escaped: "/api%2Ex", hdr: "X-Forwarded-Prefix"},
		{name: "strip prefix with space", m: strip("/my%20api"), target: "/my%20api/x", path: "/x", hdr: "X-Forwarded-Prefix", hdrValue: "/my%20api"},
		{name: "add", m: add("/api"), target: "/users?id=2", path: "/api/users", uri: "/api/users?id=2"},
		{name: "add to root", m: add("/api/"), target: "/", path: "/api/"},
		{name: "add keeps escapes", m: add("/api"), target: "/a%2Fb", path: "/api/a/b", escaped: "/api/a%2Fb"},
		{name: "add escaped prefix", m: add("/my%20api"), target: "/x", path: "/my api/x", escaped: "/my%20api/x"},
		{name: "replace", m: replace("/health"), target: "/status/x?full=1", path: "/health", uri: "/health?full=1", hdr: "X-Replaced-Path", hdrValue: "/status/x"},
		{name: "replace escaped original", m: replace("/new"), target: "/a%2Fb", path: "/new", hdr: "X-Replaced-Path", hdrValue: "/a%2Fb"},
		{name: "replace regex", m: replaceRe(`^/old/(.*)$`, "/new/$1"), target: "/old/a/b?q", path: "/new/a/b", uri: "/new/a/b?q", hdr: "X-Replaced-Path", hdrValue: "/old/a/b"},
		{name: "replace regex on escaped path", m: replaceRe(`^/old/(.*)$`, "/new/$1"), target: "/old/a%2Fb", path: "/new/a/b", escaped: "/new/a%2Fb", hdr: "X-Replaced-Path", hdrValue: "/old/a%2Fb"},
		{name: "replace regex no match", m: replaceRe(`^/old/(.*)$`, "/new/$1"), target: "/other", path: "/other", hdr: "X-Replaced-Path"},
		{name: "replace regex adds slash", m: replaceRe(`^/old/(.*)$`, "$1"), target: "/old/x", path: "/x", hdr: "X-Replaced-Path", hdrValue: "/old/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, req := runPath(t, tc.m, tc.target)
			escaped := tc.escaped
			if escaped == "" {
				escaped = tc.path
			}
			uri := tc.uri
			if uri == "" {
				uri = escaped
			}
			if s.path != tc.path || s.escaped != escaped || s.uri != uri {
				t.Errorf("got path %q escaped %q uri %q, want %q %q %q", s.path, s.escaped, s.uri, tc.path, escaped, uri)
			}
			if tc.hdr != "" {
				if got := s.header.Get(tc.hdr); got != tc.hdrValue {
					t.Errorf("%s %q, want %q", tc.hdr, got, tc.hdrValue)
				}
				if got := req.Header.Get(tc.hdr); got != "" {
					t.Errorf("the caller's request got %s %q", tc.hdr, got)
				}
			}
			// The caller's request is as it was.
			if orig := httptest.NewRequest(http.MethodGet, tc.target, nil); req.URL.String() != orig.URL.String() || req.RequestURI != orig.RequestURI {
				t.Errorf("the caller's request changed: %q %q", req.URL, req.RequestURI)
			}
		})
	}
}

func TestPathConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    config.Middleware
	}{
		{name: "strip none", m: config.Middleware{Kind: config.MWStripPrefix, StripPrefix: &config.StripPrefix{}}},
		{name: "strip relative", m: config.Middleware{Kind: config.MWStripPrefix, StripPrefix: &config.StripPrefix{Prefixes: []string{"api"}}}},
		{name: "add bad escape", m: config.Middleware{Kind: config.MWAddPrefix, AddPrefix: &config.AddPrefix{Prefix: "/a%zz"}}},
		{name: "replace relative", m: config.Middleware{Kind: config.MWReplacePath, ReplacePath: &config.ReplacePath{Path: "x"}}},
		{name: "regex invalid", m: config.Middleware{Kind: config.MWReplacePathRegex, ReplacePathRegex: &config.ReplacePathRegex{Regex: "(", Replacement: "/"}}},
		{name: "missing block", m: config.Middleware{Kind: config.MWReplacePath}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(&tc.m, Env{}); err == nil {
				t.Error("no error")
			}
		})
	}
}

// BenchmarkStripPrefix measures a strip that matches (a request copy with
// its own URL and Header) and one that does not.
func BenchmarkStripPrefix(b *testing.B) {
	mw, err := Build(&config.Middleware{Kind: config.MWStripPrefix, StripPrefix: &config.StripPrefix{Prefixes: []string{"/v1", "/api"}}}, Env{})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, target := range []string{"/api/users/42?full=1", "/other/users/42"} {
		b.Run(target, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			req.Header.Set("User-Agent", "bench")
			req.Header.Set("Accept", "*/*")
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

// FuzzStripPrefix: for any request target, strip_prefix "/api" strips
// exactly when the decoded path is "/api" or under "/api/", leaves a path
// that starts with "/" and is the decoded path without the prefix, and
// an escaped form (when it keeps one) that decodes to that path.
func FuzzStripPrefix(f *testing.F) {
	for _, s := range []string{"/api", "/api/", "/api/x", "/api%2Fx", "/api%2fa%2Fb", "/ap%69/x", "/apix", "/api%2F", "/a%2Fb", "/api/%zz"} {
		f.Add(s)
	}
	sp := &stripPrefix{prefixes: []string{"/api"}} // as newStripPrefix makes it
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") || u.Opaque != "" || u.Host != "" {
			return
		}
		path, raw, i := sp.strip(u)
		under := u.Path == "/api" || strings.HasPrefix(u.Path, "/api/")
		if (i == 0) != under {
			t.Fatalf("%q (path %q): stripped %v", target, u.Path, i == 0)
		}
		if i < 0 {
			return
		}
		if !strings.HasPrefix(path, "/") || path != "/" && "/api"+path != u.Path || path == "/" && u.Path != "/api" && u.Path != "/api/" {
			t.Fatalf("%q (path %q): stripped to %q", target, u.Path, path)
		}
		if raw != "" {
			if d, err := url.PathUnescape(raw); err != nil || d != path || !strings.HasPrefix(raw, "/") {
				t.Fatalf("%q: stripped to path %q raw %q (decodes to %q, %v)", target, path, raw, d, err)
			}
		}
	})
}
