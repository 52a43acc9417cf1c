//go:build linux

package integration

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// routingServices are the services of TestHTTPRouting, one Go backend each;
// a backend answers with its service's name.
var routingServices = []string{
	"exact", "wild", "any", "pexact", "pexpre", "pprefix", "plong", "pregex",
	"mdefault", "post", "canary", "both", "query", "internal", "prio",
}

const routingRoutes = `
# hosts: exact > wildcard > any host
http_route "exact" {
  entrypoints = ["web"]
  hosts       = ["api.example.com"]
  service     = "exact"
}
http_route "wild" {
  entrypoints = ["web"]
  hosts       = ["*.example.com"]
  service     = "wild"
}
http_route "any" {
  entrypoints = ["web"]
  service     = "any"
}

# paths: exact > prefix (longest first) > regex
http_route "pexact" {
  entrypoints = ["web"]
  hosts       = ["paths.test"]
  path        = "/exact"
  service     = "pexact"
}
http_route "pexpre" {
  entrypoints = ["web"]
  hosts       = ["paths.test"]
  path_prefix = "/exact"
  service     = "pexpre"
}
http_route "pprefix" {
  entrypoints = ["web"]
  hosts       = ["paths.test"]
  path_prefix = "/pre/"
  service     = "pprefix"
}
http_route "plong" {
  entrypoints = ["web"]
  hosts       = ["paths.test"]
  path_prefix = "/pre/longer/"
  service     = "plong"
}
http_route "pregex" {
  entrypoints = ["web"]
  hosts       = ["paths.test"]
  path_regex  = "^/(u|pre)/[0-9]+$"
  service     = "pregex"
}

# matchers on one host: more matchers win
http_route "mdefault" {
  entrypoints = ["web"]
  hosts       = ["m.test"]
  service     = "mdefault"
}
http_route "post" {
  entrypoints = ["web"]
  hosts       = ["m.test"]
  methods     = ["POST", "PUT"]
  service     = "post"
}
http_route "canary" {
  entrypoints = ["web"]
  hosts       = ["m.test"]
  headers     = { "X-Canary" = "1" }
  service     = "canary"
}
http_route "both" {
  entrypoints = ["web"]
  hosts       = ["m.test"]
  methods     = ["POST"]
  headers     = { "X-Canary" = "1" }
  service     = "both"
}
http_route "query" {
  entrypoints = ["web"]
  hosts       = ["m.test"]
  query       = { "v" = "2" }
  service     = "query"
}
http_route "internal" {
  entrypoints = ["web"]
  hosts       = ["m.test"]
  client_ip   = ["10.9.0.0/16", "2001:db8::/32"]
  service     = "internal"
}

# priority beats specificity
http_route "prio" {
  entrypoints = ["web"]
  path_prefix = "/prio/"
  priority    = 10
  service     = "prio"
}
`

// routingCases: which backend answers each request.
var routingCases = []struct {
	name string
	req  reqSpec
	want string
}{
	{"exact host", reqSpec{host: "api.example.com"}, "exact"},
	{"exact host case and port", reqSpec{host: "API.Example.COM:8443"}, "exact"},
	{"wildcard host", reqSpec{host: "www.example.com"}, "wild"},
	{"wildcard is one label", reqSpec{host: "a.b.example.com"}, "any"},
	{"wildcard not apex", reqSpec{host: "example.com"}, "any"},
	{"any host", reqSpec{host: "unknown.test"}, "any"},
	{"exact path", reqSpec{host: "paths.test", path: "/exact"}, "pexact"},
	{"exact path before equal prefix", reqSpec{host: "paths.test", path: "/exactly"}, "pexpre"},
	{"prefix", reqSpec{host: "paths.test", path: "/pre/x"}, "pprefix"},
	{"longest prefix", reqSpec{host: "paths.test", path: "/pre/longer/x"}, "plong"},
	{"regex", reqSpec{host: "paths.test", path: "/u/123"}, "pregex"},
	{"literal prefix before regex", reqSpec{host: "paths.test", path: "/pre/123"}, "pprefix"},
	{"no path on host falls to any host", reqSpec{host: "paths.test", path: "/u/abc"}, "any"},
	{"host only", reqSpec{host: "m.test"}, "mdefault"},
	{"method", reqSpec{host: "m.test", method: "POST", body: "x"}, "post"},
	{"method PUT", reqSpec{host: "m.test", method: "PUT", body: "x"}, "post"},
	{"method DELETE unmatched", reqSpec{host: "m.test", method: "DELETE"}, "mdefault"},
	{"header", reqSpec{host: "m.test", header: map[string]string{"X-Canary": "1"}}, "canary"},
	{"header other value", reqSpec{host: "m.test", header: map[string]string{"X-Canary": "2"}}, "mdefault"},
	{"more matchers win", reqSpec{host: "m.test", method: "POST", body: "x", header: map[string]string{"X-Canary": "1"}}, "both"},
	{"query", reqSpec{host: "m.test", path: "/?v=2"}, "query"},
	{"query other value", reqSpec{host: "m.test", path: "/?v=3"}, "mdefault"},
	{"client ip via trusted XFF", reqSpec{host: "m.test", header: map[string]string{"X-Forwarded-For": "10.9.1.1"}}, "internal"},
	{"client ip v6 via trusted XFF", reqSpec{host: "m.test", header: map[string]string{"X-Forwarded-For": "2001:db8::7"}}, "internal"},
	{"client ip outside", reqSpec{host: "m.test", header: map[string]string{"X-Forwarded-For": "10.8.1.1"}}, "mdefault"},
	{"client ip is the rightmost untrusted", reqSpec{host: "m.test", header: map[string]string{"X-Forwarded-For": "10.9.1.1, 192.0.2.1"}}, "mdefault"},
	{"priority beats exact host", reqSpec{host: "api.example.com", path: "/prio/x"}, "prio"},
	{"priority on any host", reqSpec{host: "m.test", path: "/prio/"}, "prio"},
}

// startRoutingProxy starts the routing table's backends and proxynow with
// one entrypoint serving plaintext and TLS (a certificate for every host of
// the table, from ca). It returns the entrypoint address and the backends.
func startRoutingProxy(t *testing.T, ca *testCA) (string, map[string]*httpBackend) {
	t.Helper()
	leaf := ca.issue(t, t.TempDir(), "proxy", "proxy.test", "api.example.com", "*.example.com", "paths.test", "m.test", "unknown.test")
	backends := map[string]*httpBackend{}
	var services strings.Builder
	for _, name := range routingServices {
		b := startHTTPBackend(t, name)
		backends[name] = b
		fmt.Fprintf(&services, "service %q {\n  backend \"http://%s\" {}\n}\n", name, b.addr)
	}
	p := startProxy(t, hcl(`
tls {
  certificate "proxy" {
    cert_file = %q
    key_file  = %q
    default   = true
  }
}
entrypoint "web" {
  address         = "127.0.0.1:0"
  trusted_proxies = ["127.0.0.1"]
}
%s
%s`, leaf.certFile, leaf.keyFile, routingRoutes, services.String()))
	return p.addr("web"), backends
}

// TestHTTPRouting runs the routing table over HTTP/1.1, h2c and HTTP/2 over
// TLS: each request must reach the documented backend with the client's
// protocol.
func TestHTTPRouting(t *testing.T) {
	ca := newTestCA(t, "routing")
	addr, backends := startRoutingProxy(t, ca)

	for _, kind := range []clientKind{clientH1, clientH2C, clientH2TLS} {
		t.Run(kind.String(), func(t *testing.T) {
			var c *http.Client
			switch kind {
			case clientH1:
				c = newH1Client(t)
			case clientH2C:
				c = newH2CClient(t)
			case clientH2TLS:
				c = newH2TLSClient(t, ca, "proxy.test")
			}
			base := kind.scheme() + "://" + addr
			for _, tc := range routingCases {
				t.Run(tc.name, func(t *testing.T) {
					before := backends[tc.want].count.Load()
					r := mustDo(t, c, base, tc.req)
					if r.proto != kind.protoMajor() {
						t.Errorf("response protocol HTTP/%d, want HTTP/%d", r.proto, kind.protoMajor())
					}
					if r.status != http.StatusOK || r.body != tc.want {
						t.Fatalf("got %d %q, want 200 from backend %q", r.status, r.body, tc.want)
					}
					if got := backends[tc.want].count.Load() - before; got != 1 {
						t.Errorf("backend %q saw %d requests, want 1", tc.want, got)
					}
					seen, _ := backends[tc.want].last()
					if want := map[bool]string{true: "https", false: "http"}[kind == clientH2TLS]; seen.Header.Get("X-Forwarded-Proto") != want {
						t.Errorf("backend saw X-Forwarded-Proto %q, want %q", seen.Header.Get("X-Forwarded-Proto"), want)
					}
					if r.header.Get("X-Request-Id") == "" {
						t.Error("response has no X-Request-Id")
					}
				})
			}
		})
	}

	t.Run("curl --http2 over TLS", func(t *testing.T) {
		requireToolFeature(t, curlHasHTTP2(t), "curl with HTTP/2")
		_, port, _ := net.SplitHostPort(addr)
		out, err := curlRun(t, "--http2", "--cacert", ca.file,
			"--resolve", "api.example.com:"+port+":127.0.0.1",
			"-w", "\n%{http_version} %{http_code}",
			"https://api.example.com:"+port+"/")
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		if out != "exact\n2 200" {
			t.Fatalf("curl output %q, want %q", out, "exact\n2 200")
		}
	})
	t.Run("curl --http2-prior-knowledge", func(t *testing.T) {
		requireToolFeature(t, curlHasHTTP2(t), "curl with HTTP/2")
		out, err := curlRun(t, "--http2-prior-knowledge", "-H", "Host: m.test", "-H", "X-Canary: 1",
			"-w", "\n%{http_version} %{http_code}", "http://"+addr+"/")
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		if out != "canary\n2 200" {
			t.Fatalf("curl output %q, want %q", out, "canary\n2 200")
		}
	})
}

// TestHTTPForwardingHeaders: what backends receive about the client, from an
// untrusted peer (replaced) and a trusted one (appended).
func TestHTTPForwardingHeaders(t *testing.T) {
	be := startHTTPBackend(t, "be")
	p := startProxy(t, hcl(`
entrypoint "untrusted" {
  address = "127.0.0.1:0"
}
entrypoint "trusted" {
  address         = "127.0.0.1:0"
  trusted_proxies = ["127.0.0.0/8"]
}
http_route "all" {
  entrypoints = ["untrusted", "trusted"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`, be.addr))
	c := newH1Client(t)
	spoof := map[string]string{
		"X-Forwarded-For":   "203.0.113.9",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "spoof.test",
		"Forwarded":         "for=203.0.113.9",
		"X-Request-Id":      "client-chosen-id",
		"Via":               "1.1 upstream",
	}
	t.Run("untrusted peer", func(t *testing.T) {
		r := mustDo(t, c, "http://"+p.addr("untrusted"), reqSpec{host: "site.test", header: spoof})
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		s, _ := be.last()
		want := map[string]string{
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "site.test",
			"Forwarded":         `for=127.0.0.1;proto=http;host="site.test"`,
		}
		for h, v := range want {
			if got := strings.Join(s.Header.Values(h), ", "); got != v {
				t.Errorf("%s = %q, want %q", h, got, v)
			}
		}
		if id := s.Header.Get("X-Request-Id"); id == "" || id == "client-chosen-id" || id != r.header.Get("X-Request-Id") {
			t.Errorf("backend X-Request-Id %q, response %q: want a fresh id, the same on both", id, r.header.Get("X-Request-Id"))
		}
		if via := s.Header.Get("Via"); !strings.Contains(via, "proxynow") {
			t.Errorf("Via = %q, want proxynow in it", via)
		}
		if s.Host != "site.test" {
			t.Errorf("backend Host %q, want site.test (pass_host default)", s.Host)
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		r := mustDo(t, c, "http://"+p.addr("trusted"), reqSpec{host: "site.test", header: spoof})
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		s, _ := be.last()
		want := map[string]string{
			"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
			"X-Forwarded-Proto": "https",
			"X-Forwarded-Host":  "spoof.test",
			"Forwarded":         `for=203.0.113.9, for=127.0.0.1;proto=http;host="site.test"`,
			"X-Request-Id":      "client-chosen-id",
			"Via":               "1.1 upstream, 1.1 proxynow",
		}
		for h, v := range want {
			if got := strings.Join(s.Header.Values(h), ", "); got != v {
				t.Errorf("%s = %q, want %q", h, got, v)
			}
		}
		if got := r.header.Get("X-Request-Id"); got != "client-chosen-id" {
			t.Errorf("response X-Request-Id %q, want the trusted peer's", got)
		}
	})
	t.Run("Connection cannot strip X-Forwarded-For", func(t *testing.T) {
		r := mustDo(t, c, "http://"+p.addr("untrusted"), reqSpec{host: "site.test",
			header: map[string]string{"Connection": "X-Forwarded-For, Via, X-Request-Id"}})
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		s, _ := be.last()
		var missing []string
		for _, h := range []string{"X-Forwarded-For", "Via", "X-Request-Id", "Forwarded"} {
			if s.Header.Get(h) == "" {
				missing = append(missing, h)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("backend did not get %v", missing)
		}
	})
}
