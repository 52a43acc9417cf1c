package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const noRouteConfig = `
entrypoint "deny" {
  address     = "127.0.0.1:0"
  middlewares = ["deny_local"]
}
entrypoint "limit" {
  address     = "127.0.0.1:0"
  middlewares = ["hdr", "two_a_minute"]
}
entrypoint "plain" {
  address = "127.0.0.1:0"
}
http_route "app" {
  entrypoints = ["deny", "limit", "plain"]
  path        = "/ok"
  service     = "hello"
}
middleware "deny_local" {
  ip_deny {
    cidrs = ["127.0.0.0/8"]
  }
}
middleware "two_a_minute" {
  rate_limit {
    average = 2
    burst   = 2
    period  = "1m"
  }
}
middleware "hdr" {
  headers {
    response {
      set = { "X-Frame-Options" = "DENY" }
    }
  }
}
service "hello" {
  respond {
    body = "hello"
  }
}
`

// TestEntrypointMiddlewaresSeeUnmatchedRequests: an entrypoint's
// middlewares run for requests no route takes (404) and for CONNECT (405),
// as nginx's server-level directives do: ip_deny refuses them (403, not
// 404), rate_limit counts them, headers decorate the 404; an entrypoint
// without middlewares still answers 404 and 405 itself.
func TestEntrypointMiddlewaresSeeUnmatchedRequests(t *testing.T) {
	s := started(t, noRouteConfig)
	c := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	do := func(ep, method, path string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+s.Addr(ep).String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if method == http.MethodConnect {
			req.URL.Opaque = "backend.test:443" // the request target of a CONNECT
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s on %s: %v", method, path, ep, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	want := func(resp *http.Response, code int, what string) {
		t.Helper()
		if resp.StatusCode != code {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, code)
		}
	}

	want(do("deny", "GET", "/nope"), http.StatusForbidden, "ip_deny entrypoint, no route")
	want(do("deny", "GET", "/ok"), http.StatusForbidden, "ip_deny entrypoint, matched route")
	want(do("deny", "CONNECT", ""), http.StatusForbidden, "ip_deny entrypoint, CONNECT")

	for i := range 2 {
		resp := do("limit", "GET", "/nope")
		want(resp, http.StatusNotFound, "rate_limit entrypoint, no route")
		if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("404 %d: X-Frame-Options %q, want the entrypoint's headers middleware's DENY", i, got)
		}
	}
	// The two 404s spent the burst: the matched route is refused now.
	want(do("limit", "GET", "/ok"), http.StatusTooManyRequests, "rate_limit entrypoint after two 404s")
	want(do("limit", "CONNECT", ""), http.StatusTooManyRequests, "rate_limit entrypoint, CONNECT")

	want(do("plain", "GET", "/ok"), http.StatusOK, "plain entrypoint, matched route")
	want(do("plain", "GET", "/nope"), http.StatusNotFound, "plain entrypoint, no route")
	resp := do("plain", "CONNECT", "")
	want(resp, http.StatusMethodNotAllowed, "plain entrypoint, CONNECT")
	if resp.Header.Get("Allow") == "" {
		t.Error("405 to CONNECT without Allow")
	}
}

// TestNoRouteTrackerKeptAcrossReload: a reload that leaves an entrypoint's
// middlewares alone keeps its no-route handler, rate limiter state and
// all; one that changes them makes a new one.
func TestNoRouteTrackerKeptAcrossReload(t *testing.T) {
	s := started(t, noRouteConfig)
	track := func() map[trackKey]*reqTracker {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.gen.httpTrack
	}
	g := track()
	var key trackKey
	for k := range g {
		if k.route == "" && k.ln.name == "limit" {
			key = k
		}
	}
	before := g[key]
	if before == nil {
		t.Fatalf("no no-route tracker for entrypoint limit among %v", g)
	}
	reload(t, s, noRouteConfig+"\nservice \"unused\" {\n  respond {}\n}\n")
	if track()[key] != before {
		t.Error("an unrelated reload replaced the no-route tracker")
	}
	reload(t, s, strings.Replace(noRouteConfig, "average = 2", "average = 3", 1))
	if got := track()[key]; got == nil || got == before {
		t.Errorf("a reload changing the entrypoint's rate_limit left the no-route tracker %p (was %p)", got, before)
	}
}
