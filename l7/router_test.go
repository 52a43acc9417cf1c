package l7

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/proxynow/proxynow/config"
)

// newTestRouter builds a Router whose routes are named by their config.
func newTestRouter(t testing.TB, routes ...config.HTTPRoute) *Router {
	t.Helper()
	var rs []*Route
	for i := range routes {
		rs = append(rs, &Route{Config: &routes[i], Handler: http.NotFoundHandler()})
	}
	rt, err := NewRouter(rs)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	return rt
}

// request is a request to route: "GET http://host/path?query" with
// optional headers and a client address.
type request struct {
	method  string
	url     string
	headers http.Header
	client  string
}

func (q request) build() (*http.Request, netip.Addr) {
	method := q.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, q.url, nil)
	for k, vs := range q.headers {
		r.Header[k] = vs
	}
	client := netip.MustParseAddr("192.0.2.1")
	if q.client != "" {
		client = netip.MustParseAddr(q.client)
	}
	return r, client
}

func matchName(rt *Router, q request) string {
	r, client := q.build()
	route := rt.Match(r, r.Host, client)
	if route == nil {
		return ""
	}
	return route.Config.Name
}

type routeCase struct {
	name string
	req  request
	want string // route name; "" for no route (404)
}

func TestRouterMatch(t *testing.T) {
	suites := []struct {
		name   string
		routes []config.HTTPRoute
		cases  []routeCase
	}{
		{
			name: "host",
			routes: []config.HTTPRoute{
				{Name: "exact", Hosts: []string{"example.com"}},
				{Name: "wild", Hosts: []string{"*.example.com"}},
				{Name: "ip6", Hosts: []string{"::1"}},
			},
			cases: []routeCase{
				{name: "exact", req: request{url: "http://example.com/"}, want: "exact"},
				{name: "upper case", req: request{url: "http://EXAMPLE.Com/"}, want: "exact"},
				{name: "port", req: request{url: "http://example.com:8080/"}, want: "exact"},
				{name: "trailing dot", req: request{url: "http://example.com./"}, want: "exact"},
				{name: "trailing dot and port upper case", req: request{url: "http://Example.COM.:443/"}, want: "exact"},
				{name: "wildcard one label", req: request{url: "http://a.example.com/"}, want: "wild"},
				{name: "wildcard upper case", req: request{url: "http://WWW.Example.Com./"}, want: "wild"},
				{name: "wildcard not two labels", req: request{url: "http://a.b.example.com/"}, want: ""},
				{name: "wildcard empty label", req: request{url: "http://.example.com/"}, want: ""},
				{name: "other host", req: request{url: "http://example.org/"}, want: ""},
				{name: "suffix without dot", req: request{url: "http://badexample.com/"}, want: ""},
				{name: "ipv6 literal with port", req: request{url: "http://[::1]:8080/"}, want: "ip6"},
			},
		},
		{
			name: "any host is last",
			routes: []config.HTTPRoute{
				{Name: "any"},
				{Name: "wild", Hosts: []string{"*.example.com"}},
				{Name: "exact", Hosts: []string{"a.example.com", "B.example.com."}},
			},
			cases: []routeCase{
				{name: "exact beats wildcard and any", req: request{url: "http://a.example.com/"}, want: "exact"},
				{name: "second host normalised", req: request{url: "http://b.example.com/"}, want: "exact"},
				{name: "wildcard beats any", req: request{url: "http://c.example.com/"}, want: "wild"},
				{name: "any", req: request{url: "http://other.test/"}, want: "any"},
				{name: "no host", req: request{url: "/x"}, want: "any"},
			},
		},
		{
			name: "path",
			routes: []config.HTTPRoute{
				{Name: "root", PathPrefix: "/"},
				{Name: "api", PathPrefix: "/api"},
				{Name: "api-v1", PathPrefix: "/api/v1/"},
				{Name: "api-exact", Path: "/api"},
				{Name: "users-re", PathRegex: `^/api/v1/users/[0-9]+$`},
				{Name: "user-re", PathRegex: `^/u/[0-9]+$`},
				{Name: "user-literal", PathPrefix: "/u/1"},
				{Name: "login", Path: "/api/v1/login"},
			},
			cases: []routeCase{
				{name: "root prefix", req: request{url: "/"}, want: "root"},
				{name: "unmatched falls to root", req: request{url: "/static/app.js"}, want: "root"},
				{name: "exact beats prefix of same length", req: request{url: "/api"}, want: "api-exact"},
				{name: "prefix is a plain string prefix", req: request{url: "/apix"}, want: "api"},
				{name: "prefix", req: request{url: "/api/"}, want: "api"},
				{name: "longest prefix wins", req: request{url: "/api/v1/things"}, want: "api-v1"},
				{name: "prefix of the prefix without slash", req: request{url: "/api/v1"}, want: "api"},
				{name: "exact", req: request{url: "/api/v1/login"}, want: "login"},
				{name: "exact does not match longer", req: request{url: "/api/v1/login/x"}, want: "api-v1"},
				{name: "literal prefix beats regex", req: request{url: "/api/v1/users/42"}, want: "api-v1"},
				{name: "even prefix / beats regex", req: request{url: "/u/2"}, want: "root"},
				{name: "any literal prefix beats regex", req: request{url: "/u/12"}, want: "user-literal"},
				{name: "regex anchored", req: request{url: "/u/2x"}, want: "root"},
				{name: "decoded path", req: request{url: "/api%2Fv1/x"}, want: "api-v1"},
				{name: "query is not path", req: request{url: "/api?x=/api/v1/"}, want: "api-exact"},
			},
		},
		{
			name: "regex beats no path",
			routes: []config.HTTPRoute{
				{Name: "all"},
				{Name: "re", PathRegex: `^/u/[0-9]+$`},
			},
			cases: []routeCase{
				{name: "regex", req: request{url: "/u/7"}, want: "re"},
				{name: "no match", req: request{url: "/u/x"}, want: "all"},
			},
		},
		{
			name: "methods",
			routes: []config.HTTPRoute{
				{Name: "read", Methods: []string{"GET"}},
				{Name: "write", Methods: []string{"POST", "PUT"}},
			},
			cases: []routeCase{
				{name: "GET", req: request{method: "GET", url: "/"}, want: "read"},
				{name: "POST", req: request{method: "POST", url: "/"}, want: "write"},
				{name: "PUT", req: request{method: "PUT", url: "/"}, want: "write"},
				{name: "HEAD is not GET", req: request{method: "HEAD", url: "/"}, want: ""},
				{name: "lower case is another method", req: request{method: "get", url: "/"}, want: ""},
				{name: "DELETE", req: request{method: "DELETE", url: "/"}, want: ""},
			},
		},
		{
			name: "headers",
			routes: []config.HTTPRoute{
				{Name: "canary", Headers: map[string]string{"X-Canary": "1"}},
				{Name: "both", Headers: map[string]string{"X-Canary": "1", "X-Team": "a b"}},
			},
			cases: []routeCase{
				{name: "one", req: request{url: "/", headers: http.Header{"X-Canary": {"1"}}}, want: "canary"},
				{name: "more headers win", req: request{url: "/", headers: http.Header{"X-Canary": {"1"}, "X-Team": {"a b"}}}, want: "both"},
				{name: "any of several values", req: request{url: "/", headers: http.Header{"X-Canary": {"0", "1"}}}, want: "canary"},
				{name: "comma list is one value", req: request{url: "/", headers: http.Header{"X-Canary": {"0, 1"}}}, want: ""},
				{name: "value is exact", req: request{url: "/", headers: http.Header{"X-Canary": {"10"}}}, want: ""},
				{name: "missing", req: request{url: "/"}, want: ""},
			},
		},
		{
			name: "query",
			routes: []config.HTTPRoute{
				{Name: "space", Query: map[string]string{"a": "b c"}},
				{Name: "debug", Query: map[string]string{"debug": ""}},
				{Name: "escaped key", Query: map[string]string{"k&y": "v=1"}},
				{Name: "two", Query: map[string]string{"x": "1", "y": "2"}},
			},
			cases: []routeCase{
				{name: "percent escape", req: request{url: "/?a=b%20c"}, want: "space"},
				{name: "plus is space", req: request{url: "/?a=b+c"}, want: "space"},
				{name: "escaped letters", req: request{url: "/?%61=%62%20%63"}, want: "space"},
				{name: "repeated key any value", req: request{url: "/?a=x&a=b%20c&a=y"}, want: "space"},
				{name: "not decoded twice", req: request{url: "/?a=b%2520c"}, want: ""},
				{name: "bad escape", req: request{url: "/?a=b%2"}, want: ""},
				{name: "bad hex", req: request{url: "/?a=b%zzc"}, want: ""},
				{name: "semicolon pair ignored", req: request{url: "/?a=b+c;x=1"}, want: ""},
				{name: "prefix of value", req: request{url: "/?a=b"}, want: ""},
				{name: "longer value", req: request{url: "/?a=b%20cd"}, want: ""},
				{name: "empty value without equals", req: request{url: "/?debug"}, want: "debug"},
				{name: "empty value with equals", req: request{url: "/?x&debug=&y"}, want: "debug"},
				{name: "escaped separators", req: request{url: "/?k%26y=v%3D1"}, want: "escaped key"},
				{name: "all pairs needed", req: request{url: "/?y=2&x=1"}, want: "two"},
				{name: "one pair missing", req: request{url: "/?x=1"}, want: ""},
				{name: "no query", req: request{url: "/"}, want: ""},
			},
		},
		{
			name: "client_ip",
			routes: []config.HTTPRoute{
				{Name: "v4", ClientIP: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
				{Name: "v6", ClientIP: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}},
				{Name: "mapped", ClientIP: []netip.Prefix{netip.MustParsePrefix("::ffff:172.16.0.0/108")}},
			},
			cases: []routeCase{
				{name: "v4", req: request{url: "/", client: "10.1.2.3"}, want: "v4"},
				{name: "v4-mapped v6 client", req: request{url: "/", client: "::ffff:10.1.2.3"}, want: "v4"},
				{name: "v6", req: request{url: "/", client: "2001:db8::1"}, want: "v6"},
				{name: "v4-mapped prefix", req: request{url: "/", client: "172.16.9.9"}, want: "mapped"},
				{name: "outside", req: request{url: "/", client: "11.0.0.1"}, want: ""},
				{name: "v6 outside", req: request{url: "/", client: "2001:db9::1"}, want: ""},
			},
		},
		{
			name: "priority",
			routes: []config.HTTPRoute{
				{Name: "specific", Hosts: []string{"a.example.com"}, Path: "/api/v1/login", Methods: []string{"GET"}},
				{Name: "catch-all", Priority: 10, PathPrefix: "/"},
				{Name: "low", Hosts: []string{"b.example.com"}, Priority: -1},
				{Name: "wild-high", Hosts: []string{"*.example.com"}, Priority: 20, Headers: map[string]string{"X-Wild": "1"}},
			},
			cases: []routeCase{
				{name: "any-host priority beats exact host", req: request{url: "http://a.example.com/api/v1/login"}, want: "catch-all"},
				{name: "wildcard priority beats everything", req: request{url: "http://a.example.com/api/v1/login", headers: http.Header{"X-Wild": {"1"}}}, want: "wild-high"},
				{name: "negative priority below any host", req: request{url: "http://b.example.com/"}, want: "catch-all"},
			},
		},
		{
			name: "ties",
			routes: []config.HTTPRoute{
				{Name: "first", PathPrefix: "/x"},
				{Name: "second", PathPrefix: "/x"},
				{Name: "methods", PathPrefix: "/y"},
				{Name: "methods+client", PathPrefix: "/y", Methods: []string{"GET"}, ClientIP: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}},
				{Name: "method", PathPrefix: "/y", Methods: []string{"GET"}},
				{Name: "prio", PathPrefix: "/y", Priority: 1},
			},
			cases: []routeCase{
				{name: "declaration order", req: request{url: "/x"}, want: "first"},
				{name: "priority before matcher count", req: request{url: "/y", method: "GET"}, want: "prio"},
			},
		},
		{
			name: "matcher count",
			routes: []config.HTTPRoute{
				{Name: "none", PathPrefix: "/y"},
				{Name: "method", PathPrefix: "/y", Methods: []string{"GET"}},
				{Name: "method+client", PathPrefix: "/y", Methods: []string{"GET"}, ClientIP: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
				{Name: "longer path", PathPrefix: "/yy"},
			},
			cases: []routeCase{
				{name: "most matchers", req: request{url: "/y", method: "GET"}, want: "method+client"},
				{name: "next when one fails", req: request{url: "/y", method: "GET", client: "198.51.100.1"}, want: "method"},
				{name: "fewest", req: request{url: "/y", method: "POST"}, want: "none"},
				{name: "path before matcher count", req: request{url: "/yy", method: "GET"}, want: "longer path"},
			},
		},
		{
			name: "host before path",
			routes: []config.HTTPRoute{
				{Name: "exact-root", Hosts: []string{"a.example.com"}, PathPrefix: "/"},
				{Name: "wild-deep", Hosts: []string{"*.example.com"}, Path: "/deep/path"},
				{Name: "any-deep", Path: "/deep/path/more"},
			},
			cases: []routeCase{
				{name: "exact host with short path", req: request{url: "http://a.example.com/deep/path"}, want: "exact-root"},
				{name: "wildcard host", req: request{url: "http://b.example.com/deep/path"}, want: "wild-deep"},
				{name: "any host", req: request{url: "http://b.example.com/deep/path/more"}, want: "any-deep"},
			},
		},
		{
			name: "no route",
			routes: []config.HTTPRoute{
				{Name: "a", Hosts: []string{"a.example.com"}, PathPrefix: "/a"},
			},
			cases: []routeCase{
				{name: "wrong path", req: request{url: "http://a.example.com/b"}, want: ""},
				{name: "wrong host", req: request{url: "http://b.example.com/a"}, want: ""},
			},
		},
	}
	for _, s := range suites {
		rt := newTestRouter(t, s.routes...)
		for _, c := range s.cases {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				if got := matchName(rt, c.req); got != c.want {
					t.Errorf("%s %s: got route %q, want %q", c.req.method, c.req.url, got, c.want)
				}
			})
		}
	}
	t.Run("empty router", func(t *testing.T) {
		if got := matchName(newTestRouter(t), request{url: "/"}); got != "" {
			t.Errorf("got %q", got)
		}
	})
}

func TestRouterMatchHostArgument(t *testing.T) {
	rt := newTestRouter(t, config.HTTPRoute{Name: "a", Hosts: []string{"a.example.com"}})
	r := httptest.NewRequest("GET", "/", nil)
	for _, host := range []string{"a.example.com", "A.EXAMPLE.COM", "a.example.com.", "a.example.com:80", "A.Example.Com.:8443"} {
		if rt.Match(r, host, netip.Addr{}) == nil {
			t.Errorf("host %q: no match", host)
		}
	}
	for _, host := range []string{"", "a.example.com..", strings.Repeat("a", 300), "b.example.com"} {
		if rt.Match(r, host, netip.Addr{}) != nil {
			t.Errorf("host %q: matched", host)
		}
	}
}

func TestNewRouterErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		route *Route
		want  string
	}{
		{"nil", nil, "no config"},
		{"no handler", &Route{Config: &config.HTTPRoute{Name: "x"}}, `http_route "x": no handler`},
		{"bad regex", &Route{Config: &config.HTTPRoute{Name: "x", PathRegex: "("}, Handler: http.NotFoundHandler()}, "path_regex"},
		{"two paths", &Route{Config: &config.HTTPRoute{Name: "x", Path: "/a", PathPrefix: "/b"}, Handler: http.NotFoundHandler()}, "exclusive"},
		{"inner wildcard", &Route{Config: &config.HTTPRoute{Name: "x", Hosts: []string{"a.*.com"}}, Handler: http.NotFoundHandler()}, "wildcard"},
		{"bare wildcard", &Route{Config: &config.HTTPRoute{Name: "x", Hosts: []string{"*."}}, Handler: http.NotFoundHandler()}, "wildcard"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRouter([]*Route{c.route})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestRouterMatchAllocs(t *testing.T) {
	rt := newTestRouter(t,
		config.HTTPRoute{Name: "exact", Hosts: []string{"api.example.com"}, PathPrefix: "/v1/", Methods: []string{"GET"}},
		config.HTTPRoute{Name: "wild", Hosts: []string{"*.example.com"}, PathRegex: `^/u/[0-9]+$`},
		config.HTTPRoute{Name: "headers", Hosts: []string{"api.example.com"}, Headers: map[string]string{"X-Canary": "1"}},
		config.HTTPRoute{Name: "query", Query: map[string]string{"a": "b c", "d": "e"}},
		config.HTTPRoute{Name: "client", ClientIP: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	)
	for _, c := range []routeCase{
		{name: "exact host upper case with port", req: request{url: "http://API.Example.com:443/v1/x"}, want: "exact"},
		{name: "wildcard regex", req: request{url: "http://www.example.com./u/12"}, want: "wild"},
		{name: "headers", req: request{method: "POST", url: "http://api.example.com/", headers: http.Header{"X-Canary": {"0", "1"}}}, want: "headers"},
		{name: "query with escapes", req: request{url: "http://other/?d=e&a=b%20c"}, want: "query"},
		{name: "client ip mapped", req: request{url: "http://other/", client: "::ffff:10.0.0.1"}, want: "client"},
		{name: "miss", req: request{url: "http://other/?a=b"}, want: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, client := c.req.build()
			if got := matchName(rt, c.req); got != c.want {
				t.Fatalf("got route %q, want %q", got, c.want)
			}
			if n := testing.AllocsPerRun(100, func() { rt.Match(r, r.Host, client) }); n != 0 {
				t.Errorf("Match allocates %v times per call", n)
			}
		})
	}
}

func TestRouterConcurrent(t *testing.T) {
	rt := newTestRouter(t,
		config.HTTPRoute{Name: "a", Hosts: []string{"a.example.com"}, PathPrefix: "/a"},
		config.HTTPRoute{Name: "b", Hosts: []string{"*.example.com"}, PathRegex: "^/b"},
	)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			for j := 0; j < 1000; j++ {
				if got := matchName(rt, request{url: "http://b.example.com/b"}); got != "b" {
					errs <- got
					return
				}
				if got := matchName(rt, request{url: "http://a.example.com/a"}); got != "a" {
					errs <- got
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Errorf("concurrent match got %q", got)
	}
}

func TestRouterWarnings(t *testing.T) {
	cidr := netip.MustParsePrefix
	for _, c := range []struct {
		name   string
		routes []config.HTTPRoute
		want   []string // names of the shadowed routes, in order
	}{
		{
			name: "duplicate",
			routes: []config.HTTPRoute{
				{Name: "a", Hosts: []string{"x.example.com"}, PathPrefix: "/api"},
				{Name: "b", Hosts: []string{"x.example.com"}, PathPrefix: "/api"},
			},
			want: []string{"b"},
		},
		{
			name: "duplicate with higher priority is fine",
			routes: []config.HTTPRoute{
				{Name: "a", PathPrefix: "/api"},
				{Name: "b", PathPrefix: "/api", Priority: 1},
			},
			want: []string{"a"},
		},
		{
			name: "catch-all with priority",
			routes: []config.HTTPRoute{
				{Name: "specific", Hosts: []string{"x.example.com"}, Path: "/login", Methods: []string{"POST"}},
				{Name: "all", Priority: 5},
				{Name: "wild", Hosts: []string{"*.example.com"}, PathRegex: "^/u"},
			},
			want: []string{"specific", "wild"},
		},
		{
			name: "catch-all without priority shadows nothing",
			routes: []config.HTTPRoute{
				{Name: "all"},
				{Name: "specific", Hosts: []string{"x.example.com"}},
				{Name: "prefix", PathPrefix: "/"},
			},
			want: nil,
		},
		{
			name: "wider prefix and subset of matchers",
			routes: []config.HTTPRoute{
				{Name: "wide", Priority: 1, PathPrefix: "/a", Methods: []string{"GET", "POST"}, ClientIP: []netip.Prefix{cidr("10.0.0.0/8")}},
				{Name: "narrow", PathPrefix: "/a/b", Methods: []string{"GET"}, Headers: map[string]string{"X-A": "1"}, ClientIP: []netip.Prefix{cidr("10.1.0.0/16")}},
				{Name: "other method", PathPrefix: "/a/b", Methods: []string{"PUT"}},
				{Name: "wider client", PathPrefix: "/a/b", Methods: []string{"GET"}, ClientIP: []netip.Prefix{cidr("0.0.0.0/0")}},
				{Name: "exact path", Path: "/a/c", Methods: []string{"POST"}, ClientIP: []netip.Prefix{cidr("10.0.0.1/32")}},
				{Name: "regex path", PathRegex: "^/a/", Methods: []string{"GET"}, ClientIP: []netip.Prefix{cidr("10.0.0.0/8")}},
			},
			want: []string{"narrow", "exact path"},
		},
		{
			name: "wildcard covers exact host only with priority",
			routes: []config.HTTPRoute{
				{Name: "wild", Hosts: []string{"*.example.com"}, Priority: 1},
				{Name: "exact", Hosts: []string{"a.example.com", "b.example.com"}},
				{Name: "mixed", Hosts: []string{"a.example.com", "example.org"}},
				{Name: "wild-lower", Hosts: []string{"*.example.com"}, PathPrefix: "/x"},
				{Name: "deeper", Hosts: []string{"a.b.example.com"}},
			},
			want: []string{"exact", "wild-lower"},
		},
		{
			name: "more specific host wins without priority",
			routes: []config.HTTPRoute{
				{Name: "wild", Hosts: []string{"*.example.com"}},
				{Name: "exact", Hosts: []string{"a.example.com"}},
			},
			want: nil,
		},
		{
			name: "same regex and exact path under regex",
			routes: []config.HTTPRoute{
				{Name: "re", PathRegex: "^/u/[0-9]+$", Priority: 1},
				{Name: "re2", PathRegex: "^/u/[0-9]+$"},
				{Name: "path", Path: "/u/12"},
				{Name: "path-miss", Path: "/u/x"},
			},
			want: []string{"re2", "path"},
		},
		{
			name: "headers and query",
			routes: []config.HTTPRoute{
				{Name: "h", Priority: 1, Headers: map[string]string{"X-A": "1"}, Query: map[string]string{"q": "1"}},
				{Name: "more", Headers: map[string]string{"X-A": "1", "X-B": "2"}, Query: map[string]string{"q": "1"}},
				{Name: "other value", Headers: map[string]string{"X-A": "2"}, Query: map[string]string{"q": "1"}},
				{Name: "no query", Headers: map[string]string{"X-A": "1"}},
			},
			want: []string{"more"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws := newTestRouter(t, c.routes...).Warnings()
			if len(ws) != len(c.want) {
				t.Fatalf("warnings %q, want %d for %q", ws, len(c.want), c.want)
			}
			for i, w := range ws {
				if !strings.HasPrefix(w.Message, `http_route "`+c.want[i]+`" `) || !strings.Contains(w.Message, "can never match") {
					t.Errorf("warning %d = %q, want it about %q", i, w, c.want[i])
				}
			}
		})
	}
}

func TestUnescapedEquals(t *testing.T) {
	for _, c := range []struct {
		raw, want string
		ok        bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"a%20b", "a b", true},
		{"a+b", "a b", true},
		{"%2B", "+", true},
		{"%e2%82%ac", "€", true},
		{"%E2%82%AC", "€", true},
		{"a%2", "a%2", false},
		{"%", "%", false},
		{"%g0", "%g0", false},
		{"ab", "abc", false},
		{"abc", "ab", false},
	} {
		if got := unescapedEquals(c.raw, c.want); got != c.ok {
			t.Errorf("unescapedEquals(%q, %q) = %v, want %v", c.raw, c.want, got, c.ok)
		}
	}
}

// FuzzQueryHas checks the allocation-free query matcher against
// url.ParseQuery, which backends and Go handlers use.
func FuzzQueryHas(f *testing.F) {
	for _, seed := range [][3]string{
		{"a=b%20c", "a", "b c"},
		{"a=b+c&a=d", "a", "d"},
		{"debug", "debug", ""},
		{"k%26y=v%3D1;x", "k&y", "v=1"},
		{"a=%zz&a=1", "a", "1"},
		{"&&=&a==", "a", "="},
		{"%E2%82%AC=%", "€", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, raw, name, value string) {
		if strings.Count(raw, "&") > 1000 {
			return // url.ParseQuery has a limit on the number of pairs
		}
		vs, _ := url.ParseQuery(raw)
		want := slices.Contains(vs[name], value)
		if got := queryHas(raw, name, value); got != want {
			t.Errorf("queryHas(%q, %q, %q) = %v, url.ParseQuery says %v", raw, name, value, got, want)
		}
		for k, vals := range vs {
			for _, v := range vals {
				if !queryHas(raw, k, v) {
					t.Errorf("queryHas(%q, %q, %q) = false, url.ParseQuery has it", raw, k, v)
				}
			}
		}
	})
}

// TestRouterMatchLinear compares Match with a linear scan that ranks every
// matching route by the documented order, over random routes and requests.
func TestRouterMatchLinear(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rnd.IntN(len(xs))] }
	hosts := []string{"a.example.com", "b.example.com", "*.example.com", "*.b.example.com", "x.b.example.com"}
	paths := []string{"/", "/a", "/a/", "/a/b", "/ab", "/b/c"}
	for round := 0; round < 200; round++ {
		var routes []config.HTTPRoute
		for i := 0; i < 1+rnd.IntN(12); i++ {
			r := config.HTTPRoute{Name: fmt.Sprint(i), Priority: rnd.IntN(3) - 1}
			for range rnd.IntN(3) {
				r.Hosts = append(r.Hosts, pick(hosts...))
			}
			switch rnd.IntN(4) {
			case 0:
				r.Path = pick(paths...)
			case 1:
				r.PathPrefix = pick(paths...)
			case 2:
				r.PathRegex = pick("^/a", "b$", "^/[ab]/")
			}
			if rnd.IntN(3) == 0 {
				r.Methods = []string{pick("GET", "POST")}
			}
			if rnd.IntN(3) == 0 {
				r.Headers = map[string]string{"X-A": pick("1", "2")}
			}
			if rnd.IntN(4) == 0 {
				r.Query = map[string]string{"q": pick("1", "2")}
			}
			if rnd.IntN(4) == 0 {
				r.ClientIP = []netip.Prefix{netip.MustParsePrefix(pick("10.0.0.0/8", "::/0"))}
			}
			routes = append(routes, r)
		}
		rt := newTestRouter(t, routes...)
		for range 50 {
			q := request{
				method:  pick("GET", "POST"),
				url:     "http://" + pick("a.example.com", "B.example.com", "x.b.example.com", "c.example.com", "other") + pick(paths...) + pick("", "x", "/c") + pick("", "?q=1", "?q=2"),
				headers: http.Header{"X-A": {pick("1", "2")}},
				client:  pick("10.1.1.1", "192.0.2.1", "2001:db8::1"),
			}
			if got, want := matchName(rt, q), linearMatch(routes, q); got != want {
				t.Fatalf("round %d: %s %s %v from %s: Match %q, linear scan %q\nroutes: %+v", round, q.method, q.url, q.headers, q.client, got, want, routes)
			}
		}
	}
}

func linearMatch(routes []config.HTTPRoute, q request) string {
	r, client := q.build()
	host := strings.ToLower(r.URL.Hostname())
	best, bestRank := "", rank{}
	for i := range routes {
		c := &routes[i]
		m, err := compileRoute(&Route{Config: c, Handler: http.NotFoundHandler()}, i)
		if err != nil {
			panic(err)
		}
		level := -1
		if len(c.Hosts) == 0 {
			level = tierAny
		}
		for _, h := range c.Hosts {
			if h == host {
				level = tierExact
			} else if rest, ok := strings.CutPrefix(h, "*."); ok && level < tierWildcard {
				if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
					level = tierWildcard
				}
			}
		}
		if level < 0 ||
			c.Path != "" && r.URL.Path != c.Path ||
			c.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, c.PathPrefix) ||
			!m.matches(r, client.Unmap()) {
			continue
		}
		rk := m.rank
		rk.tier = level
		if best == "" || rk.beats(&bestRank) {
			best, bestRank = c.Name, rk
		}
	}
	return best
}
