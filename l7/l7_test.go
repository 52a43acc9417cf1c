package l7

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// svcFor is an HTTP service over the given backend URLs ("http://a:1").
func svcFor(urls ...string) *config.Service {
	svc := &config.Service{Name: "svc", Balancer: config.BalancerRoundRobin, ConnectTimeout: time.Second, FailTimeout: time.Second,
		HTTP: config.HTTPService{PassHost: true, ResponseHeaderTimeout: 2 * time.Second, IdleConnTimeout: time.Minute, MaxIdleConnsPerBackend: 16}}
	for _, u := range urls {
		scheme, addr, _ := strings.Cut(u, "://")
		svc.Backends = append(svc.Backends, config.Backend{Address: addr, Scheme: scheme, Weight: 1})
	}
	return svc
}

// front is an entrypoint in front of one service, served on a loopback
// HTTP server (net/http's, as l7.Server wraps it).
type front struct {
	url   string
	pool  *upstream.Pool
	proxy *Proxy
}

func newFront(t *testing.T, svc *config.Service, trusted ...string) *front {
	t.Helper()
	px, pool := newTestProxy(t, svc)
	pool.StartHealthChecks()
	router := routeAll(t, &Route{Config: &config.HTTPRoute{Name: "r", Service: svc.Name}, Handler: px, Upgrades: true})
	var tp []netip.Prefix
	for _, p := range trusted {
		tp = append(tp, netip.MustParsePrefix(p))
	}
	ts := httptest.NewServer(NewEntry("web", router, tp, nil))
	t.Cleanup(ts.Close)
	return &front{url: ts.URL, pool: pool, proxy: px}
}

// newTestProxy is svc's Proxy over a pool of its backends; both are
// closed when the test ends.
func newTestProxy(t *testing.T, svc *config.Service) (*Proxy, *upstream.Pool) {
	t.Helper()
	pool, err := upstream.NewPool(svc, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	px := NewProxy(svc, pool, nil)
	t.Cleanup(px.CloseIdleConnections)
	return px, pool
}

// routeAll is a router with the one route r, which every request matches.
func routeAll(t *testing.T, r *Route) *Router {
	t.Helper()
	router, err := NewRouter([]*Route{r})
	if err != nil {
		t.Fatal(err)
	}
	return router
}

func backend(t *testing.T, h http.HandlerFunc) (*httptest.Server, string) {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts, "http://" + ts.Listener.Addr().String()
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.CloseIdleConnections()
	return resp, string(b)
}

func TestForwardingHeaders(t *testing.T) {
	var seen atomic.Pointer[http.Request]
	_, u := backend(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Clone(context.Background()))
		io.WriteString(w, "ok")
	})
	tests := []struct {
		name    string
		trusted []string
		send    map[string]string
		check   func(t *testing.T, r *http.Request)
	}{
		{name: "untrusted peer's headers replaced", send: map[string]string{"X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6", "X-Request-Id": "evil"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
					t.Errorf("X-Forwarded-For = %q", got)
				}
				if got := r.Header.Get("Forwarded"); got != `for=127.0.0.1;proto=http;host="`+r.Host+`"` {
					t.Errorf("Forwarded = %q", got)
				}
				if got := r.Header.Get("X-Request-Id"); got == "evil" || got == "" {
					t.Errorf("X-Request-Id = %q, want a fresh one", got)
				}
			}},
		{name: "trusted peer's headers appended", trusted: []string{"127.0.0.0/8"}, send: map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "abc-123"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
					t.Errorf("X-Forwarded-For = %q", got)
				}
				if got := r.Header.Get("X-Request-Id"); got != "abc-123" {
					t.Errorf("X-Request-Id = %q", got)
				}
			}},
		{name: "Connection cannot strip proxy headers", send: map[string]string{"Connection": "X-Forwarded-For, X-Request-Id, Via"},
			check: func(t *testing.T, r *http.Request) {
				for _, h := range []string{"X-Forwarded-For", "X-Request-Id", "Via", "X-Forwarded-Proto", "X-Forwarded-Host"} {
					if r.Header.Get(h) == "" {
						t.Errorf("%s missing", h)
					}
				}
			}},
		{name: "h2c upgrade stripped", send: map[string]string{"Upgrade": "h2c", "Connection": "Upgrade, HTTP2-Settings", "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA"},
			check: func(t *testing.T, r *http.Request) {
				for _, h := range []string{"Upgrade", "HTTP2-Settings"} {
					if v := r.Header.Get(h); v != "" {
						t.Errorf("%s = %q reached the backend", h, v)
					}
				}
			}},
		{name: "hop-by-hop removed, Via added", send: map[string]string{"Keep-Alive": "timeout=5", "Proxy-Authorization": "x", "Te": "gzip"},
			check: func(t *testing.T, r *http.Request) {
				for _, h := range []string{"Keep-Alive", "Proxy-Authorization", "Te"} {
					if v := r.Header.Get(h); v != "" {
						t.Errorf("%s = %q reached the backend", h, v)
					}
				}
				if got := r.Header.Get("Via"); got != "1.1 proxynow" {
					t.Errorf("Via = %q", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFront(t, svcFor(u), tt.trusted...)
			resp, body := get(t, f.url+"/x", tt.send)
			if resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the response")
			}
			tt.check(t, seen.Load())
		})
	}
}

func TestErrorStatuses(t *testing.T) {
	dead := "http://" + closedAddr(t)
	_, slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	tests := []struct {
		name string
		svc  *config.Service
		want int
	}{
		{name: "unreachable is 502", svc: svcFor(dead), want: 502},
		{name: "timeout is 504", svc: func() *config.Service {
			s := svcFor(slow)
			s.HTTP.ResponseHeaderTimeout = 100 * time.Millisecond
			return s
		}(), want: 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFront(t, tt.svc)
			resp, body := get(t, f.url+"/", nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tt.want)
			}
			if !strings.HasPrefix(body, strings.Fields(body)[0]) || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Fatalf("body %q", body)
			}
		})
	}
}

func TestRetrySafeOnly(t *testing.T) {
	var hits atomic.Int64
	// The first backend resets every connection after reading the request.
	reset := listenFunc(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		hits.Add(1)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	_, good := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "good") })
	svc := svcFor("http://"+reset, good)
	svc.HTTP.Retry = &config.Retry{Attempts: 2}
	f := newFront(t, svc)
	for range 4 {
		resp, body := get(t, f.url+"/", nil)
		if resp.StatusCode != 200 || body != "good" {
			t.Fatalf("GET: %d %q: a reset must be retried on the other backend", resp.StatusCode, body)
		}
	}
	// A POST that reached the resetting backend is not retried.
	before := hits.Load()
	for range 2 {
		resp, err := http.Post(f.url+"/", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 502 && hits.Load() == before {
			t.Fatal("502 without reaching the backend")
		}
	}
	if hits.Load() == before {
		t.Fatal("POSTs never reached the resetting backend")
	}
}

func TestBreakerOpens(t *testing.T) {
	_, failing := backend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	svc := svcFor(failing)
	svc.HTTP.CircuitBreaker = &config.CircuitBreaker{FailureRatio: 0.5, MinRequests: 3, Interval: time.Minute, OpenTimeout: 200 * time.Millisecond, FailureStatusLo: 500, FailureStatusHi: 599}
	f := newFront(t, svc)
	for range 3 {
		if resp, _ := get(t, f.url+"/", nil); resp.StatusCode != 500 {
			t.Fatalf("status %d before the breaker opened", resp.StatusCode)
		}
	}
	start := time.Now()
	resp, _ := get(t, f.url+"/", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("open breaker: status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("open breaker answered in %v", d)
	}
	time.Sleep(250 * time.Millisecond)
	if resp, _ := get(t, f.url+"/", nil); resp.StatusCode != 500 {
		t.Fatalf("half-open probe: status %d, want the backend's 500", resp.StatusCode)
	}
}

func TestStickyCookie(t *testing.T) {
	_, a := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") })
	_, b := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	svc := svcFor(a, b)
	svc.HTTP.Sticky = &config.Sticky{Cookie: "pn", HTTPOnly: true}
	f := newFront(t, svc)
	resp, first := get(t, f.url+"/", nil)
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "pn" {
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatal("no sticky cookie set")
	}
	for range 6 {
		resp, body := get(t, f.url+"/", map[string]string{"Cookie": "pn=" + cookie})
		if body != first {
			t.Fatalf("sticky request went to %q, pinned to %q", body, first)
		}
		if len(resp.Cookies()) != 0 {
			t.Fatal("cookie re-set on a pinned request")
		}
	}
}

func TestRespond(t *testing.T) {
	h := NewRespond(&config.Respond{Status: 201, Body: "hello\n", Headers: map[string]string{"X-A": "b"}})
	for _, m := range []string{"GET", "HEAD"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/", nil))
		want := "hello\n"
		if m == "HEAD" {
			want = ""
		}
		if rec.Code != 201 || rec.Body.String() != want || rec.Header().Get("X-A") != "b" || rec.Header().Get("Content-Length") != "6" {
			t.Fatalf("%s: %d %q %v", m, rec.Code, rec.Body.String(), rec.Header())
		}
	}
}

func TestNoRouteIs404(t *testing.T) {
	router, _ := NewRouter(nil)
	ts := httptest.NewServer(NewEntry("web", router, nil, nil))
	defer ts.Close()
	resp, body := get(t, ts.URL+"/", nil)
	if resp.StatusCode != 404 || body != "404 Not Found\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func listenFunc(t *testing.T, f func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestRetryExhaustedKeepsBackendError(t *testing.T) {
	svc := svcFor("http://" + closedAddr(t))
	svc.HTTP.Retry = &config.Retry{Attempts: 3}
	f := newFront(t, svc)
	if resp, body := get(t, f.url+"/", nil); resp.StatusCode != 502 {
		t.Fatalf("status %d %q, want 502 for an unreachable backend", resp.StatusCode, body)
	}
}

func TestConnectRefused(t *testing.T) {
	router, _ := NewRouter([]*Route{{Config: &config.HTTPRoute{Name: "r", Service: "s"}, Handler: NewRespond(&config.Respond{Body: "x"})}})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("CONNECT", "http://example.com:443", nil)
	NewEntry("web", router, nil, nil).ServeHTTP(rec, req)
	if rec.Code != 405 {
		t.Fatalf("CONNECT got %d, want 405", rec.Code)
	}
}

// TestDialFailureMovesOn: without a retry block, a request whose
// connection is refused goes to the next backend (as nginx's default
// proxy_next_upstream error), whatever its method; it is not a 502 while
// another backend answers.
func TestDialFailureMovesOn(t *testing.T) {
	_, good := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "good") })
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			svc := svcFor("http://"+closedAddr(t), "http://"+closedAddr(t), good)
			svc.HTTP.Retry = nil
			f := newFront(t, svc)
			req, _ := http.NewRequest(method, f.url+"/", strings.NewReader("payload"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "good" {
				t.Fatalf("%d %q: a refused connection must move on to the next backend", resp.StatusCode, b)
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestHashWithoutKeySpreads: with hash_key = "header:..." or
// "cookie:...", requests that do not send it are spread over the backends
// (as HAProxy's balance hdr() falls back to round robin) instead of all
// landing on the backend that owns the empty key; those that send it stay
// pinned.
func TestHashWithoutKeySpreads(t *testing.T) {
	var urls []string
	for _, name := range []string{"a", "b", "c"} {
		_, u := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
		urls = append(urls, u)
	}
	for _, key := range []string{"header:X-User", "cookie:uid"} {
		t.Run(key, func(t *testing.T) {
			svc := svcFor(urls...)
			svc.Balancer, svc.HTTP.HashKey = config.BalancerHash, key
			f := newFront(t, svc)
			seen := map[string]bool{}
			for range 6 {
				_, body := get(t, f.url+"/", nil)
				seen[body] = true
			}
			if len(seen) != 3 {
				t.Fatalf("requests without the key went to %v, want all three backends", seen)
			}
			hdr := map[string]string{"X-User": "alice", "Cookie": "uid=alice"}
			_, first := get(t, f.url+"/", hdr)
			for range 4 {
				if _, body := get(t, f.url+"/", hdr); body != first {
					t.Fatalf("keyed request went to %q, then %q", first, body)
				}
			}
		})
	}
}
