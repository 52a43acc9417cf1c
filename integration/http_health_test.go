//go:build linux

package integration

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestHTTPHealthCheck: with interval 100ms and unhealthy_after 2, a killed
// backend leaves rotation within interval × unhealthy_after (plus slack for
// the check already in progress and scheduling), and returns once it
// answers again on the same port.
func TestHTTPHealthCheck(t *testing.T) {
	const (
		interval       = 100 * time.Millisecond
		unhealthyAfter = 2
		// One interval for the check cycle that was already under way,
		// plus scheduling on a loaded 2-core machine.
		slack = interval + 200*time.Millisecond
	)
	b0 := startHTTPBackend(t, "b0")
	b1 := startHTTPBackend(t, "b1")
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "all" {
  entrypoints = ["web"]
  service     = "svc"
}
service "svc" {
  backend "http://%s" {}
  backend "http://%s" {}
  health_check {
    path            = "/health"
    interval        = "100ms"
    timeout         = "50ms"
    unhealthy_after = %d
    healthy_after   = 1
  }
}
`, b0.addr, b1.addr, unhealthyAfter))
	base := "http://" + p.addr("web")
	c := newH1Client(t)

	spread := func(n int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			r := mustDo(t, c, base, reqSpec{path: "/x"})
			if r.status != 200 {
				t.Fatalf("status %d %q", r.status, r.body)
			}
			got[r.body]++
		}
		return got
	}
	if got := spread(10); got["b0"] != 5 || got["b1"] != 5 {
		t.Fatalf("before the kill: %v, want 5 each", got)
	}
	// Health checks reach the backends on the configured path.
	if !slices.ContainsFunc(b1.requests(), func(s seenRequest) bool { return s.URI == "/health" && s.Method == "GET" }) {
		t.Errorf("backend saw no GET /health")
	}

	t.Run("killed backend leaves rotation", func(t *testing.T) {
		addr := b1.addr
		killed := time.Now()
		b1.Close()
		// No client traffic meanwhile: only the health checks can notice.
		seen := waitLog(t, p, 5*time.Second, `"backend unhealthy"`, addr)
		el := seen.Sub(killed)
		limit := interval*unhealthyAfter + slack
		t.Logf("marked unhealthy %v after the kill (limit %v)", el.Round(time.Millisecond), limit)
		if el > limit {
			t.Errorf("backend left rotation %v after the kill, want within %v", el, limit)
		}
		if got := spread(20); got["b0"] != 20 {
			t.Errorf("after the kill: %v, want all 20 on b0", got)
		}

		t.Run("returns when restarted", func(t *testing.T) {
			restarted := time.Now()
			b1 = startHTTPBackendAt(t, "b1", addr)
			seen := waitLog(t, p, 5*time.Second, `"backend healthy"`, addr)
			el := seen.Sub(restarted)
			t.Logf("healthy again %v after the restart", el.Round(time.Millisecond))
			if limit := interval + slack; el > limit {
				t.Errorf("backend back %v after the restart, want within %v", el, limit)
			}
			if got := spread(10); got["b0"] != 5 || got["b1"] != 5 {
				t.Errorf("after the restart: %v, want 5 each", got)
			}
		})
	})
}

// TestHTTPCircuitBreaker: with every backend failing, the breaker opens
// after min_requests, then answers 503 with Retry-After at once without
// touching the backends; after open_timeout one probe goes through (a
// failing probe reopens it), and a successful probe closes it.
func TestHTTPCircuitBreaker(t *testing.T) {
	const openTimeout = time.Second
	b0 := startHTTPBackend(t, "b0")
	b1 := startHTTPBackend(t, "b1")
	b0.status.Store(500)
	b1.status.Store(500)
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "all" {
  entrypoints = ["web"]
  service     = "svc"
}
service "svc" {
  backend "http://%s" {}
  backend "http://%s" {}
  circuit_breaker {
    min_requests  = 5
    failure_ratio = 0.5
    interval      = "60s"
    open_timeout  = "1s"
  }
}
`, b0.addr, b1.addr))
	base := "http://" + p.addr("web")
	c := newH1Client(t)
	backendHits := func() int64 { return b0.count.Load() + b1.count.Load() }

	for i := range 5 {
		r := mustDo(t, c, base, reqSpec{path: "/fail"})
		if r.status != 500 {
			t.Fatalf("request %d: status %d %q, want the backend's 500 while the breaker is closed", i+1, r.status, r.body)
		}
	}
	opened := time.Now()
	if n := backendHits(); n != 5 {
		t.Fatalf("backends saw %d requests, want 5", n)
	}

	t.Run("opens after min_requests", func(t *testing.T) {
		r := mustDo(t, c, base, reqSpec{path: "/fail"})
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("6th request: %d %q, want 503", r.status, r.body)
		}
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 1 {
			t.Errorf("Retry-After %q, want 1 (seconds until the 1s open timeout ends)", r.header.Get("Retry-After"))
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Error("no X-Request-Id on the 503")
		}
		if n := backendHits(); n != 5 {
			t.Errorf("backends saw %d requests, want still 5", n)
		}
		waitLog(t, p, time.Second, `"circuit breaker open"`)
	})

	t.Run("503 in under 5ms while open", func(t *testing.T) {
		// A warm keep-alive connection: time from writing the request to
		// having read the whole response.
		var lat []time.Duration
		for range 20 {
			start := time.Now()
			r := mustDo(t, c, base, reqSpec{path: "/fail"})
			lat = append(lat, time.Since(start))
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
				t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
			}
		}
		if time.Since(opened) >= openTimeout {
			t.Fatalf("measuring took past the open timeout; the machine is too slow for this test")
		}
		slices.Sort(lat)
		median := lat[len(lat)/2]
		t.Logf("503 latency: median %v, max %v", median, lat[len(lat)-1])
		if median >= 5*time.Millisecond {
			t.Errorf("median 503 latency %v, want < 5ms", median)
		}
		if n := backendHits(); n != 5 {
			t.Errorf("backends saw %d requests while open, want still 5", n)
		}
	})

	t.Run("half-open probe that fails reopens", func(t *testing.T) {
		time.Sleep(time.Until(opened.Add(openTimeout + 100*time.Millisecond)))
		r := mustDo(t, c, base, reqSpec{path: "/probe"})
		if r.status != 500 {
			t.Fatalf("first request after open_timeout: %d %q, want the backend's 500 (the half-open probe)", r.status, r.body)
		}
		if n := backendHits(); n != 6 {
			t.Errorf("backends saw %d requests, want 6 (one probe)", n)
		}
		waitLog(t, p, time.Second, `"circuit breaker half-open"`)
		r = mustDo(t, c, base, reqSpec{path: "/probe"})
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("after a failed probe: %d, want 503 (open again)", r.status)
		}
		opened = time.Now()
	})

	t.Run("successful probe closes", func(t *testing.T) {
		b0.status.Store(200)
		b1.status.Store(200)
		time.Sleep(time.Until(opened.Add(openTimeout + 100*time.Millisecond)))
		before := backendHits()
		for i := range 10 {
			r := mustDo(t, c, base, reqSpec{path: "/ok"})
			if r.status != 200 {
				t.Fatalf("request %d after the backends recovered: %d %q, want 200", i+1, r.status, r.body)
			}
		}
		if n := backendHits() - before; n != 10 {
			t.Errorf("backends saw %d of 10 requests", n)
		}
		waitLog(t, p, time.Second, `"circuit breaker closed"`)
	})
}

// TestHTTPNoHealthyBackend: when every backend fails its health checks the
// client gets 503 at once, not a request to a known-bad backend.
func TestHTTPNoHealthyBackend(t *testing.T) {
	sick := startHTTPBackend(t, "sick")
	sick.status.Store(500)
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "all" {
  entrypoints = ["web"]
  service     = "svc"
}
service "svc" {
  backend "http://%s" {}
  health_check {
    path            = "/health"
    interval        = "100ms"
    timeout         = "50ms"
    unhealthy_after = 1
  }
}
`, sick.addr))
	waitLog(t, p, 5*time.Second, `"backend unhealthy"`, sick.addr)
	c := newH1Client(t)
	r := mustDo(t, c, "http://"+p.addr("web"), reqSpec{path: "/x"})
	if r.status != http.StatusServiceUnavailable || r.body != "503 Service Unavailable\n" {
		t.Errorf("got %d %q, want 503 %q", r.status, r.body, "503 Service Unavailable\n")
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	for _, s := range sick.requests() {
		if s.URI == "/x" {
			t.Errorf("the unhealthy backend got the client's request")
		}
	}
}
