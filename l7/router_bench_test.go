package l7

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/proxynow/proxynow/config"
)

// benchRoutes is 1,000 exact hosts × 10 path prefixes (one route of each
// host also with a method and a header), 100 wildcard hosts × 5 routes
// (prefixes and a regex), and a few routes for any host: 10,505 routes.
func benchRoutes() []config.HTTPRoute {
	var rs []config.HTTPRoute
	for h := 0; h < 1000; h++ {
		host := fmt.Sprintf("svc%d.example.com", h)
		for p := 0; p < 10; p++ {
			r := config.HTTPRoute{
				Name:       fmt.Sprintf("h%d-p%d", h, p),
				Hosts:      []string{host},
				PathPrefix: fmt.Sprintf("/api/v%d/", p),
			}
			if p == 3 {
				r.Methods = []string{"GET", "POST"}
				r.Headers = map[string]string{"X-Tenant": "blue"}
			}
			rs = append(rs, r)
		}
	}
	for h := 0; h < 100; h++ {
		host := fmt.Sprintf("*.tenant%d.example.net", h)
		for p := 0; p < 4; p++ {
			rs = append(rs, config.HTTPRoute{Name: fmt.Sprintf("w%d-p%d", h, p), Hosts: []string{host}, PathPrefix: fmt.Sprintf("/app%d/", p)})
		}
		rs = append(rs, config.HTTPRoute{Name: fmt.Sprintf("w%d-re", h), Hosts: []string{host}, PathRegex: `^/users/[0-9]+$`})
	}
	rs = append(rs,
		config.HTTPRoute{Name: "healthz", Path: "/healthz"},
		config.HTTPRoute{Name: "metrics", PathRegex: `^/metrics/[a-z]+$`},
		config.HTTPRoute{Name: "internal", PathPrefix: "/internal/", ClientIP: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		config.HTTPRoute{Name: "debug", PathPrefix: "/", Query: map[string]string{"debug": "on"}},
		config.HTTPRoute{Name: "low-all", Priority: -1, Hosts: []string{"*.example.org"}},
	)
	return rs
}

func BenchmarkRouterMatch(b *testing.B) {
	rt := newTestRouter(b, benchRoutes()...)
	client := netip.MustParseAddr("192.0.2.1")
	for _, c := range []struct {
		name   string
		method string
		url    string
		header http.Header
		want   string
	}{
		{name: "exact host", url: "http://svc517.example.com/api/v7/orders/12", want: "h517-p7"},
		{name: "exact host with matchers", url: "http://SVC517.example.com:8443/api/v3/x?y=1", header: http.Header{"X-Tenant": {"blue"}}, want: "h517-p3"},
		{name: "wildcard host", url: "http://acme.tenant42.example.net/app2/index.html", want: "w42-p2"},
		{name: "wildcard regex", url: "http://acme.tenant42.example.net/users/12345", want: "w42-re"},
		{name: "any host", url: "http://svc517.example.com/healthz", want: "healthz"},
		{name: "miss", url: "http://unknown.example.com/nothing/here?x=1", want: ""},
	} {
		method := c.method
		if method == "" {
			method = http.MethodGet
		}
		r := httptest.NewRequest(method, c.url, nil)
		for k, v := range c.header {
			r.Header[k] = v
		}
		host := r.Host
		got := rt.Match(r, host, client)
		if got == nil && c.want != "" || got != nil && got.Config.Name != c.want {
			b.Fatalf("%s: got %v, want %q", c.name, got, c.want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rt.Match(r, host, client)
			}
		})
	}
}

func BenchmarkNewRouter(b *testing.B) {
	routes := benchRoutes()
	rs := make([]*Route, len(routes))
	for i := range routes {
		rs[i] = &Route{Config: &routes[i], Handler: http.NotFoundHandler()}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewRouter(rs); err != nil {
			b.Fatal(err)
		}
	}
}
