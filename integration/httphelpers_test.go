//go:build linux

package integration

// Helpers for the http_*_test.go files: Go HTTP backends that record what
// they receive, HTTP/1.1, h2c and HTTP/2-over-TLS clients, curl wrappers and
// process inspection (RSS).

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// ---------------------------------------------------------------------------
// Go HTTP backends

// seenRequest is what an httpBackend records of one request.
type seenRequest struct {
	Method string
	Host   string
	URI    string
	Proto  string
	Header http.Header
}

// httpBackend is a loopback net/http server (HTTP/1.1 and h2c) that records
// every request and, by default, answers 200 with its name in the body and
// in X-Backend.
type httpBackend struct {
	name    string
	addr    string
	srv     *http.Server
	served  chan struct{} // closed when Serve returned
	count   atomic.Int64
	mu      sync.Mutex
	seen    []seenRequest
	handler atomic.Pointer[http.HandlerFunc] // nil: the default answer
	status  atomic.Int64                     // status of the default answer; 0 = 200
	once    sync.Once
}

func startHTTPBackend(t testing.TB, name string) *httpBackend {
	t.Helper()
	return startHTTPBackendAt(t, name, "127.0.0.1:0")
}

// startHTTPBackendAt starts a backend on addr (a port just freed by a
// previous backend may take a moment to be reusable: a few retries).
func startHTTPBackendAt(t testing.TB, name, addr string) *httpBackend {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("backend %s: listen %s: %v", name, addr, err)
	}
	b := &httpBackend{name: name, addr: ln.Addr().String(), served: make(chan struct{})}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	b.srv = &http.Server{
		Handler:           b,
		Protocols:         &protos,
		ReadHeaderTimeout: ioTimeout,
		ErrorLog:          nil,
	}
	go func() {
		defer close(b.served)
		_ = b.srv.Serve(ln)
	}()
	t.Cleanup(b.Close)
	return b
}

// Close stops the backend: the listener and every connection are closed at
// once (like a killed process) and Serve has returned.
func (b *httpBackend) Close() {
	b.once.Do(func() {
		_ = b.srv.Close()
		<-b.served
	})
}

// setHandler replaces the default answer; nil restores it.
func (b *httpBackend) setHandler(h http.HandlerFunc) {
	if h == nil {
		b.handler.Store(nil)
		return
	}
	b.handler.Store(&h)
}

func (b *httpBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.count.Add(1)
	b.mu.Lock()
	b.seen = append(b.seen, seenRequest{Method: r.Method, Host: r.Host, URI: r.RequestURI, Proto: r.Proto, Header: r.Header.Clone()})
	b.mu.Unlock()
	if h := b.handler.Load(); h != nil {
		(*h)(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("X-Backend", b.name)
	w.Header().Set("Content-Type", "text/plain")
	code := int(b.status.Load())
	if code == 0 {
		code = http.StatusOK
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, b.name)
}

// requests returns a copy of what the backend has seen.
func (b *httpBackend) requests() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seenRequest(nil), b.seen...)
}

func (b *httpBackend) last() (seenRequest, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		return seenRequest{}, false
	}
	return b.seen[len(b.seen)-1], true
}

// ---------------------------------------------------------------------------
// clients

// httpClients are the three ways the tests speak HTTP to proxynow.
type clientKind int

const (
	clientH1    clientKind = iota // net/http, HTTP/1.1 only
	clientH2C                     // x/net/http2, prior knowledge over plaintext
	clientH2TLS                   // net/http over TLS, h2 by ALPN
)

func (k clientKind) String() string {
	return [...]string{"http1", "h2c", "h2-tls"}[k]
}

func (k clientKind) scheme() string {
	if k == clientH2TLS {
		return "https"
	}
	return "http"
}

func (k clientKind) protoMajor() int {
	if k == clientH1 {
		return 1
	}
	return 2
}

// newH1Client is a keep-alive HTTP/1.1 client; its idle connections close in
// t.Cleanup.
func newH1Client(t testing.TB) *http.Client {
	t.Helper()
	var protos http.Protocols
	protos.SetHTTP1(true)
	tr := &http.Transport{
		Protocols:           &protos,
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout, CheckRedirect: noRedirect}
}

// newH2CClient is x/net/http2 speaking HTTP/2 with prior knowledge.
func newH2CClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout, CheckRedirect: noRedirect}
}

// newH2TLSClient is net/http over TLS verified against ca for serverName,
// offering h2 and http/1.1.
func newH2TLSClient(t testing.TB, ca *testCA, serverName string) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: ca.pool(), ServerName: serverName},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout, CheckRedirect: noRedirect}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// reqSpec is one request of a test table.
type reqSpec struct {
	method string // default GET
	host   string // Host header; default the address
	path   string // path and query; default "/"
	header map[string]string
	body   string
}

// result is a response read to the end.
type result struct {
	status int
	proto  int
	header http.Header
	body   string
}

// do sends spec to base (scheme://addr) with c and reads the whole response.
func do(c *http.Client, base string, spec reqSpec) (result, error) {
	method := spec.method
	if method == "" {
		method = http.MethodGet
	}
	path := spec.path
	if path == "" {
		path = "/"
	}
	var body io.Reader
	if spec.body != "" {
		body = strings.NewReader(spec.body)
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		return result{}, err
	}
	if spec.host != "" {
		req.Host = spec.host
	}
	for k, v := range spec.header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	return result{status: resp.StatusCode, proto: resp.ProtoMajor, header: resp.Header, body: string(b)}, nil
}

// mustDo is do that fails the test on a transport error.
func mustDo(t testing.TB, c *http.Client, base string, spec reqSpec) result {
	t.Helper()
	r, err := do(c, base, spec)
	if err != nil {
		t.Fatalf("%s %s%s (Host %q): %v", spec.method, base, spec.path, spec.host, err)
	}
	return r
}

// ---------------------------------------------------------------------------
// curl

// curlRun runs curl with args (bounded by 20s) and returns stdout+stderr.
func curlRun(t testing.TB, args ...string) (string, error) {
	t.Helper()
	curl := requireTool(t, "curl")
	return runToolOutput(t, nil, curl, append([]string{"-sS", "--max-time", "15"}, args...)...)
}

// curlHasHTTP2 reports whether curl was built with HTTP/2.
func curlHasHTTP2(t testing.TB) bool {
	t.Helper()
	out, _ := curlRun(t, "--version")
	return strings.Contains(out, "HTTP2")
}

// ---------------------------------------------------------------------------
// proxynow process inspection

// rssBytes reads VmRSS of pid from /proc.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) < 1 {
				break
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS line")
}

// rssSampler samples a process's RSS every 20ms until stopped and keeps the
// maximum.
type rssSampler struct {
	pid  int
	max  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startRSSSampler(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			if v, err := rssBytes(pid); err == nil && v > s.max.Load() {
				s.max.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the maximum RSS seen.
func (s *rssSampler) finish() int64 {
	close(s.stop)
	<-s.done
	if v, err := rssBytes(s.pid); err == nil && v > s.max.Load() {
		s.max.Store(v)
	}
	return s.max.Load()
}

// waitLog polls p's output for a line containing every one of subs, up to d.
// It returns the time it was first seen (by polling, so late by up to 5ms).
func waitLog(t testing.TB, p *proc, d time.Duration, subs ...string) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, line := range strings.Split(p.log.String(), "\n") {
			ok := true
			for _, s := range subs {
				if !strings.Contains(line, s) {
					ok = false
					break
				}
			}
			if ok {
				return time.Now()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line containing %q within %v", subs, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
