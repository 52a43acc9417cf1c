package middleware

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/proxynow/proxynow/config"
)

func TestRedirects(t *testing.T) {
	scheme := func(s string, port int, perm bool) *config.Middleware {
		return &config.Middleware{Name: "m", Kind: config.MWRedirectScheme, RedirectScheme: &config.RedirectScheme{Scheme: s, Port: port, Permanent: perm}}
	}
	re := func(rx, repl string, perm bool) *config.Middleware {
		return &config.Middleware{Name: "m", Kind: config.MWRedirectRegex, RedirectRegex: &config.RedirectRegex{Regex: rx, Replacement: repl, Permanent: perm}}
	}
	for _, tc := range []struct {
		name     string
		m        *config.Middleware
		method   string
		target   string // absolute: its host is the Host header
		tls      bool
		code     int // 0: passed to the next handler
		location string
	}{
		{name: "to https keeps query", m: scheme("https", 0, false), target: "http://example.com/a/b?x=1&y=%20", code: 302, location: "https://example.com/a/b?x=1&y=%20"},
		{name: "default scheme", m: scheme("", 0, false), target: "http://example.com/", code: 302, location: "https://example.com/"},
		{name: "port dropped from host", m: scheme("https", 0, false), target: "http://example.com:8080/p", code: 302, location: "https://example.com/p"},
		{name: "default port omitted", m: scheme("https", 443, false), target: "http://example.com/p", code: 302, location: "https://example.com/p"},
		{name: "other port", m: scheme("https", 8443, false), target: "http://example.com:8080/p?q", code: 302, location: "https://example.com:8443/p?q"},
		{name: "escaped path kept", m: scheme("https", 0, false), target: "http://example.com/a%2Fb/c%20d", code: 302, location: "https://example.com/a%2Fb/c%20d"},
		{name: "ipv6 host", m: scheme("https", 0, false), target: "http://[::1]:8080/p", code: 302, location: "https://[::1]/p"},
		{name: "permanent GET", m: scheme("https", 0, true), target: "http://example.com/p", code: 301, location: "https://example.com/p"},
		{name: "HEAD", m: scheme("https", 0, false), method: http.MethodHead, target: "http://example.com/p", code: 302, location: "https://example.com/p"},
		{name: "POST", m: scheme("https", 0, false), method: http.MethodPost, target: "http://example.com/p", code: 307, location: "https://example.com/p"},
		{name: "permanent POST", m: scheme("https", 0, true), method: http.MethodPost, target: "http://example.com/p", code: 308, location: "https://example.com/p"},
		{name: "already https", m: scheme("https", 0, false), target: "https://example.com/p", tls: true},
		{name: "already https other port", m: scheme("https", 8443, false), target: "https://example.com/p", tls: true},
		{name: "acme challenge passes", m: scheme("https", 0, true), target: "http://example.com/.well-known/acme-challenge/tok123"},
		{name: "to http", m: scheme("http", 80, false), target: "https://example.com:443/p?q=1", tls: true, code: 302, location: "http://example.com/p?q=1"},
		{name: "regex keeps query", m: re(`^http://([^/]+)/old/(.*)$`, "https://$1/new/$2", false), target: "http://example.com/old/x?a=1&b=2", code: 302, location: "https://example.com/new/x?a=1&b=2"},
		{name: "regex named group", m: re(`^https?://(?P<host>[^/:]+)(:\d+)?/(.*)$`, "https://www.${host}/$3", true), target: "http://example.com:8080/p?q", code: 301, location: "https://www.example.com/p?q"},
		{name: "regex permanent PUT", m: re(`^http://example\.com/(.*)$`, "https://example.org/$1", true), method: http.MethodPut, target: "http://example.com/p", code: 308, location: "https://example.org/p"},
		{name: "regex no match", m: re(`^http://other\.com/`, "https://other.com/", false), target: "http://example.com/p"},
		{name: "regex to itself passes", m: re(`^(.*)$`, "$1", false), target: "http://example.com/p?q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mw, err := Build(tc.m, Env{})
			if err != nil {
				t.Fatal(err)
			}
			called := false
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tc.target, strings.NewReader(""))
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			} else {
				req.TLS = nil
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tc.code == 0 {
				if !called {
					t.Errorf("not passed: %d %q", rec.Code, rec.Header().Get("Location"))
				}
				return
			}
			if called || rec.Code != tc.code || rec.Header().Get("Location") != tc.location {
				t.Errorf("got passed=%t %d %q, want %d %q", called, rec.Code, rec.Header().Get("Location"), tc.code, tc.location)
			}
		})
	}
}

func TestRedirectConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    config.Middleware
	}{
		{name: "scheme unknown", m: config.Middleware{Kind: config.MWRedirectScheme, RedirectScheme: &config.RedirectScheme{Scheme: "ftp"}}},
		{name: "port out of range", m: config.Middleware{Kind: config.MWRedirectScheme, RedirectScheme: &config.RedirectScheme{Port: 70000}}},
		{name: "regex invalid", m: config.Middleware{Kind: config.MWRedirectRegex, RedirectRegex: &config.RedirectRegex{Regex: "[", Replacement: "x"}}},
		{name: "replacement empty", m: config.Middleware{Kind: config.MWRedirectRegex, RedirectRegex: &config.RedirectRegex{Regex: "x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(&tc.m, Env{}); err == nil {
				t.Error("no error")
			}
		})
	}
}
