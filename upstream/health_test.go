package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
)

// Probes every 20ms: fast tests; every assertion polls (waitFor, 5s cap)
// instead of sleeping for a guessed time. The timeout is far above what a
// loopback probe needs so a busy -race run does not fail probes.
const (
	testInterval = 20 * time.Millisecond
	testTimeout  = time.Second
)

// syncBuffer is a log sink the checking goroutine writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// quietLog drops the TLS handshake errors test servers log on purpose.
var quietLog = stdlog.New(io.Discard, "", 0)

func testLogger() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// testBackend is an HTTP (or, with a nil handler, bare TCP) server on a fixed
// loopback address that a test can kill and bring back.
type testBackend struct {
	t       *testing.T
	addr    string
	handler http.Handler
	h2c     bool

	mu   sync.Mutex
	stop func()
}

func newTestBackend(t *testing.T, handler http.Handler, h2c bool) *testBackend {
	t.Helper()
	be := &testBackend{t: t, addr: "127.0.0.1:0", handler: handler, h2c: h2c}
	be.start()
	t.Cleanup(be.kill)
	return be
}

func (be *testBackend) start() {
	be.t.Helper()
	ln, err := net.Listen("tcp", be.addr)
	if err != nil {
		be.t.Fatal(err)
	}
	be.addr = ln.Addr().String()
	done := make(chan struct{})
	var stop func()
	if be.handler != nil {
		srv := &http.Server{Handler: be.handler}
		if be.h2c {
			srv.Protocols = new(http.Protocols)
			srv.Protocols.SetHTTP1(true)
			srv.Protocols.SetUnencryptedHTTP2(true)
		}
		go func() { defer close(done); srv.Serve(ln) }()
		stop = func() { srv.Close(); <-done }
	} else {
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		stop = func() { ln.Close(); <-done }
	}
	be.mu.Lock()
	be.stop = stop
	be.mu.Unlock()
}

func (be *testBackend) kill() {
	be.mu.Lock()
	stop := be.stop
	be.stop = nil
	be.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// statusHandler answers *status and counts requests.
type statusHandler struct {
	status atomic.Int64
	hits   atomic.Int64 // requests answered
	failed atomic.Int64 // of which with a status other than 2xx
	mu     sync.Mutex
	last   *http.Request // the last request seen (headers only)
}

func newStatusHandler(status int) *statusHandler {
	h := &statusHandler{}
	h.status.Store(int64(status))
	return h
}

func (h *statusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.last = r.Clone(context.Background())
	h.mu.Unlock()
	status := int(h.status.Load())
	w.WriteHeader(status)
	if status/100 != 2 {
		h.failed.Add(1)
	}
	h.hits.Add(1)
}

func (h *statusHandler) lastRequest() *http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func healthPool(t *testing.T, hc config.HealthCheck, log *slog.Logger, scheme string, addrs ...string) *Pool {
	t.Helper()
	if hc.Interval == 0 {
		hc.Interval = testInterval
	}
	if hc.Timeout == 0 {
		hc.Timeout = testTimeout
	}
	svc := &config.Service{Name: "s", ConnectTimeout: time.Second, FailTimeout: time.Minute}
	svc.HTTP.HealthCheck = &hc
	for _, a := range addrs {
		svc.Backends = append(svc.Backends, config.Backend{Address: a, Weight: 1, Scheme: scheme,
			TLS: scheme == config.SchemeHTTPS || scheme == config.SchemeTLS})
	}
	p := newPool(t, svc, Options{Logger: log})
	t.Cleanup(p.Close)
	return p
}

// waitProbes waits until h has answered n more probes than it had.
func waitProbes(t *testing.T, h *statusHandler, n int64) {
	t.Helper()
	want := h.hits.Load() + n
	waitFor(t, func() bool { return h.hits.Load() >= want })
}

func TestHealthObserveThresholds(t *testing.T) {
	fail := errors.New("refused")
	tests := []struct {
		name           string
		unhealthyAfter int
		healthyAfter   int
		results        string // o: success, x: failure
		want           string // Healthy() after each result: H or u
	}{
		{name: "defaults: two failures out, one success in", results: "xxoxo", want: "HuHHH"},
		{name: "a success resets the failure run", unhealthyAfter: 3, results: "xxoxxox", want: "HHHHHHH"},
		{name: "three failures out", unhealthyAfter: 3, results: "xxxx", want: "HHuu"},
		{name: "two successes in", unhealthyAfter: 1, healthyAfter: 2, results: "xoxoo", want: "uuuuH"},
		{name: "one failure out", unhealthyAfter: 1, results: "xox", want: "uHu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := healthPool(t, config.HealthCheck{UnhealthyAfter: tt.unhealthyAfter, HealthyAfter: tt.healthyAfter},
				nil, config.SchemeHTTP, "a:1")
			target := &probeTarget{b: p.backends[0]}
			var got strings.Builder
			for _, r := range tt.results {
				var err error
				if r == 'x' {
					err = fail
				}
				p.observe(target, err)
				if target.b.Healthy() {
					got.WriteByte('H')
				} else {
					got.WriteByte('u')
				}
			}
			if got.String() != tt.want {
				t.Fatalf("healthy after each of %s: got %s, want %s", tt.results, got.String(), tt.want)
			}
		})
	}
}

// TestHealthLeavesAndReturns flips a backend between 200 and 500, then
// kills it and brings it back: it leaves rotation after unhealthy_after
// failed probes, comes back after healthy_after good ones, and Pick never
// chooses it in between.
func TestHealthLeavesAndReturns(t *testing.T) {
	good, flaky := newStatusHandler(200), newStatusHandler(200)
	goodBE := newTestBackend(t, good, false)
	flakyBE := newTestBackend(t, flaky, false)
	log, logs := testLogger()
	const unhealthyAfter, healthyAfter = 3, 2
	p := healthPool(t, config.HealthCheck{UnhealthyAfter: unhealthyAfter, HealthyAfter: healthyAfter},
		log, config.SchemeHTTP, goodBE.addr, flakyBE.addr)
	p.StartHealthChecks()
	p.StartHealthChecks() // idempotent: still one goroutine
	b := p.Backends()[1]
	waitProbes(t, flaky, 2)

	// A backend leaves after unhealthy_after failed probes and returns
	// after healthy_after good ones: count the answers, not the time, which
	// a busy machine stretches or squeezes (the ticker drops late ticks).
	leaves := func(t *testing.T, why string) {
		t.Helper()
		failed := flaky.failed.Load()
		waitFor(t, func() bool { return !b.Healthy() })
		if n := flaky.failed.Load() - failed; why == "500" && n < unhealthyAfter {
			t.Errorf("%s: out of rotation after %d failed probes, want %d", why, n, unhealthyAfter)
		}
		for range 20 {
			if got := pickOne(t, p, nil); got == b {
				t.Fatalf("%s: Pick chose the unhealthy backend", why)
			}
		}
	}
	returns := func(t *testing.T, why string) {
		t.Helper()
		oks := flaky.hits.Load() - flaky.failed.Load()
		waitFor(t, func() bool { return b.Healthy() })
		if n := flaky.hits.Load() - flaky.failed.Load() - oks; n < healthyAfter {
			t.Errorf("%s: back in rotation after %d good probes, want %d", why, n, healthyAfter)
		}
		waitFor(t, func() bool { return pickOne(t, p, nil) == b })
	}
	logged := func(t *testing.T, want ...string) {
		t.Helper()
		// The verdict is stored before it is logged.
		waitFor(t, func() bool {
			for _, w := range want {
				if !strings.Contains(logs.String(), w) {
					return false
				}
			}
			return true
		})
	}

	flaky.status.Store(500)
	leaves(t, "500")
	logged(t, `msg="backend unhealthy" service=s backend=`+flakyBE.addr,
		`reason="3 consecutive failed health checks, last: status 500, want 200-399"`)
	flaky.status.Store(200)
	returns(t, "200 again")
	logged(t, `msg="backend healthy" service=s backend=`+flakyBE.addr+` reason="2 consecutive successful health checks"`)

	flakyBE.kill()
	leaves(t, "killed")
	flakyBE.start() // same address
	returns(t, "restarted")

	if !p.Backends()[0].Healthy() {
		t.Error("the good backend left rotation")
	}
}

func TestHealthExpectStatus(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi int
		status int
		want   bool
	}{
		{name: "default range takes a redirect", status: 302, want: true},
		{name: "default range refuses 404", status: 404, want: false},
		{name: "exact 200 refuses 204", lo: 200, hi: 200, status: 204, want: false},
		{name: "exact 204", lo: 204, hi: 204, status: 204, want: true},
		{name: "range 500-503 takes 503", lo: 500, hi: 503, status: 503, want: true},
		{name: "range 500-503 refuses 200", lo: 500, hi: 503, status: 200, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStatusHandler(tt.status)
			be := newTestBackend(t, h, false)
			p := healthPool(t, config.HealthCheck{ExpectStatusLo: tt.lo, ExpectStatusHi: tt.hi, UnhealthyAfter: 1},
				nil, config.SchemeHTTP, be.addr)
			p.StartHealthChecks()
			// Two answered probes: the first is surely observed.
			waitProbes(t, h, 2)
			if !tt.want {
				waitFor(t, func() bool { return !p.Backends()[0].Healthy() })
			}
			if got := p.Backends()[0].Healthy(); got != tt.want {
				t.Fatalf("status %d: healthy = %v, want %v", tt.status, got, tt.want)
			}
		})
	}
}

func TestHealthProbeRequest(t *testing.T) {
	tests := []struct {
		name     string
		hc       config.HealthCheck
		wantHost string // "" for the backend's address
		wantPath string
		method   string
	}{
		{name: "defaults", wantPath: "/", method: http.MethodGet},
		{name: "host, path and method", hc: config.HealthCheck{Host: "health.example", Path: "/healthz?deep=1", Method: http.MethodHead},
			wantHost: "health.example", wantPath: "/healthz?deep=1", method: http.MethodHead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStatusHandler(200)
			be := newTestBackend(t, h, false)
			p := healthPool(t, tt.hc, nil, config.SchemeHTTP, be.addr)
			p.StartHealthChecks()
			waitProbes(t, h, 1)
			r := h.lastRequest()
			host := tt.wantHost
			if host == "" {
				host = be.addr
			}
			if r.Host != host || r.Method != tt.method || r.URL.RequestURI() != tt.wantPath {
				t.Errorf("probe: %s %s Host %s; want %s %s Host %s", r.Method, r.URL.RequestURI(), r.Host, tt.method, tt.wantPath, host)
			}
			if ua := r.Header.Get("User-Agent"); ua != probeUserAgent {
				t.Errorf("User-Agent %q", ua)
			}
		})
	}
}

// protoHandler fails any request that is not HTTP/2, so a probe that fell
// back to HTTP/1.1 marks the backend unhealthy.
func protoHandler(h *statusHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			w.WriteHeader(http.StatusHTTPVersionNotSupported)
			h.hits.Add(1)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestHealthH2C(t *testing.T) {
	h := newStatusHandler(200)
	be := newTestBackend(t, protoHandler(h), true)
	p := healthPool(t, config.HealthCheck{UnhealthyAfter: 1}, nil, config.SchemeH2C, be.addr)
	p.StartHealthChecks()
	waitProbes(t, h, 3)
	if !p.Backends()[0].Healthy() {
		t.Fatal("h2c backend unhealthy")
	}
	if r := h.lastRequest(); r.ProtoMajor != 2 {
		t.Fatalf("probe spoke %s", r.Proto)
	}
	h.status.Store(503)
	waitFor(t, func() bool { return !p.Backends()[0].Healthy() })
}

func TestHealthHTTPS(t *testing.T) {
	tests := []struct {
		name       string
		serverName string
		want       bool
	}{
		{name: "verified, h2 by ALPN", serverName: "example.com", want: true},
		{name: "certificate does not match", serverName: "other.test", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStatusHandler(200)
			ts := httptest.NewUnstartedServer(protoHandler(h))
			ts.EnableHTTP2 = true
			ts.Config.ErrorLog = quietLog // the failing case's handshake errors
			ts.StartTLS()
			t.Cleanup(ts.Close)
			p := healthPool(t, config.HealthCheck{UnhealthyAfter: 1}, nil, config.SchemeHTTPS, ts.Listener.Addr().String())
			// The pool would load roots from the service's ca_file; use the
			// test server's.
			cfg := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			cfg.ServerName = tt.serverName
			p.Backends()[0].TLS = cfg
			p.StartHealthChecks()
			if !tt.want {
				waitFor(t, func() bool { return !p.Backends()[0].Healthy() })
				return
			}
			waitProbes(t, h, 3)
			if !p.Backends()[0].Healthy() {
				t.Fatal("https backend unhealthy")
			}
			if r := h.lastRequest(); r.ProtoMajor != 2 || r.TLS == nil || r.TLS.ServerName != tt.serverName {
				t.Fatalf("probe: %s, TLS %v", r.Proto, r.TLS != nil)
			}
		})
	}
}

func TestHealthTCPConnect(t *testing.T) {
	be := newTestBackend(t, nil, false)
	log, logs := testLogger()
	p := healthPool(t, config.HealthCheck{UnhealthyAfter: 2}, log, config.SchemeTCP, be.addr)
	p.StartHealthChecks()
	b := p.Backends()[0]
	be.kill()
	waitFor(t, func() bool { return !b.Healthy() })
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("reason not logged:\n%s", logs.String())
	}
	// An L4 pool's Dial skips it too (it is the only backend: nothing left).
	if _, err := p.Dial(context.Background(), "tcp"); !errors.Is(err, ErrNoBackend) {
		t.Errorf("Dial with the only backend unhealthy: %v", err)
	}
	be.start()
	waitFor(t, func() bool { return b.Healthy() })
}

func TestHealthTLSHandshake(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.Config.ErrorLog = quietLog
	ts.StartTLS()
	t.Cleanup(ts.Close)
	p := healthPool(t, config.HealthCheck{UnhealthyAfter: 1}, nil, config.SchemeTLS, ts.Listener.Addr().String())
	// Roots the pool would not trust: the handshake fails.
	p.Backends()[0].TLS = &tls.Config{ServerName: "example.com", MinVersion: tls.VersionTLS12, RootCAs: nil}
	p.StartHealthChecks()
	waitFor(t, func() bool { return !p.Backends()[0].Healthy() })
}

func TestHealthClose(t *testing.T) {
	t.Run("without health_check", func(t *testing.T) {
		p := newPool(t, service("", 1), Options{})
		p.StartHealthChecks()
		if p.hc != nil {
			t.Fatal("checks started without a health_check block")
		}
		p.Close()
		p.Close()
	})
	t.Run("never started", func(t *testing.T) {
		p := healthPool(t, config.HealthCheck{}, nil, config.SchemeHTTP, "a:1")
		p.Close()
		p.StartHealthChecks() // after Close: nothing
		if p.hc != nil {
			t.Fatal("checks started after Close")
		}
	})
	t.Run("stops the goroutine", func(t *testing.T) {
		h := newStatusHandler(200)
		be := newTestBackend(t, h, false)
		ignore := goleak.IgnoreCurrent()
		p := healthPool(t, config.HealthCheck{}, nil, config.SchemeHTTP, be.addr, closedAddr(t))
		p.StartHealthChecks()
		waitProbes(t, h, 2)
		var wg sync.WaitGroup
		for range 3 { // concurrent and repeated Close
			wg.Go(p.Close)
		}
		wg.Wait()
		select {
		case <-p.hc.done:
		default:
			t.Fatal("Close returned before the checking goroutine ended")
		}
		goleak.VerifyNone(t, ignore)
		n := h.hits.Load()
		time.Sleep(5 * testInterval)
		if h.hits.Load() != n {
			t.Fatal("probes after Close")
		}
	})
}
