package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStripPrefixEscapedPaths sends raw request targets through the real
// server to a net/http backend that records what it got. The router
// matches the decoded path, so "/api%2Fx" is a request under path_prefix
// "/api"; strip_prefix strips what the router matched, on the decoded
// path, and keeps the rest of the escaped form: an escaped "/" after the
// prefix stays "%2F", and one that is the boundary itself becomes the
// new path's leading "/" (a request target must start with one).
func TestStripPrefixEscapedPaths(t *testing.T) {
	type seen struct{ uri, path, raw, fwd string }
	got := make(chan seen, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.RequestURI, r.URL.Path, r.URL.RawPath, r.Header.Get("X-Forwarded-Prefix")}
	}))
	defer be.Close()
	s := started(t, fmt.Sprintf(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "api" {
  entrypoints = ["web"]
  path_prefix = "/api"
  middlewares = ["strip"]
  service     = "be"
}
middleware "strip" {
  strip_prefix {
    prefixes = ["/api"]
  }
}
service "be" {
  backend %q {}
}
`, be.URL))
	for _, tc := range []struct {
		target, uri, path, raw, fwd string
	}{
		{target: "/api/x", uri: "/x", path: "/x", fwd: "/api"},
		{target: "/api/a%2Fb", uri: "/a%2Fb", path: "/a/b", raw: "/a%2Fb", fwd: "/api"},
		{target: "/api%2Fx", uri: "/x", path: "/x", fwd: "/api"},
		{target: "/api%2fx", uri: "/x", path: "/x", fwd: "/api"},
		{target: "/api%2Fa%2Fb", uri: "/a%2Fb", path: "/a/b", raw: "/a%2Fb", fwd: "/api"},
		{target: "/api%2F", uri: "/", path: "/", fwd: "/api"},
		{target: "/ap%69/x%20y", uri: "/x%20y", path: "/x y", fwd: "/api"},
		{target: "/api/x?q=%2F", uri: "/x?q=%2F", path: "/x", fwd: "/api"},
		{target: "/api", uri: "/", path: "/", fwd: "/api"},
		{target: "/apix", uri: "/apix", path: "/apix"}, // the route's byte prefix, not strip_prefix's segment
	} {
		t.Run(tc.target, func(t *testing.T) {
			c, err := net.Dial("tcp", s.Addr("web").String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n", tc.target)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var g seen
			select {
			case g = <-got:
			default:
				t.Fatal("the backend saw no request")
			}
			want := seen{tc.uri, tc.path, tc.raw, tc.fwd}
			if g != want {
				t.Errorf("backend saw RequestURI %q Path %q RawPath %q X-Forwarded-Prefix %q; want %q %q %q %q",
					g.uri, g.path, g.raw, g.fwd, want.uri, want.path, want.raw, want.fwd)
			}
		})
	}
}
