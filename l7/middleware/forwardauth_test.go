package middleware

import (
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
)

// faAuthSeen is the subrequest the auth service received.
type faAuthSeen struct {
	method string
	uri    string
	header http.Header
	body   string
}

// faRun serves one client request through forward_auth in front of a
// recording backend, with auth answering the subrequests. It returns the
// client's response, the subrequest and the backend's request headers
// (nil when the backend was not called).
func faRun(t *testing.T, c config.ForwardAuth, auth http.HandlerFunc, r *http.Request) (*httptest.ResponseRecorder, faAuthSeen, http.Header) {
	t.Helper()
	var seen faAuthSeen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, ar *http.Request) {
		b, _ := io.ReadAll(ar.Body)
		seen = faAuthSeen{method: ar.Method, uri: ar.RequestURI, header: ar.Header.Clone(), body: string(b)}
		auth(w, ar)
	}))
	defer srv.Close()
	if c.Address == "" {
		c.Address = srv.URL + "/verify"
	}
	fa, err := buildForwardAuth(&c, Env{ClientIP: func(*http.Request) netip.Addr { return netip.MustParseAddr("198.51.100.7") }})
	if err != nil {
		t.Fatal(err)
	}
	defer fa.client.CloseIdleConnections()
	var backend http.Header
	h := fa.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backend = r.Header.Clone()
		_, _ = io.WriteString(w, "backend")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, seen, backend
}

func TestForwardAuth(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ok := func(hdr ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Add(hdr[i], hdr[i+1])
			}
			w.WriteHeader(http.StatusOK)
		}
	}
	get := func(target string, hdr ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		return r
	}
	cases := []struct {
		name  string
		conf  config.ForwardAuth
		auth  http.HandlerFunc
		req   *http.Request
		check func(t *testing.T, w *httptest.ResponseRecorder, seen faAuthSeen, backend http.Header)
	}{
		{
			name: "2xx copies response headers over spoofed ones",
			conf: config.ForwardAuth{ResponseHeaders: []string{"X-User", "X-Groups"}},
			auth: ok("X-User", "alice", "X-Groups", "dev", "X-Groups", "ops", "X-Other", "no"),
			req:  get("/", "X-User", "root", "X-Groups", "admin"),
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ faAuthSeen, backend http.Header) {
				faWant(t, w.Code, backend, "X-User", "alice")
				faWant(t, w.Code, backend, "X-Groups", "dev", "ops")
				faWant(t, w.Code, backend, "X-Other")
			},
		},
		{
			name: "2xx without the header strips spoofed identity headers",
			conf: config.ForwardAuth{ResponseHeaders: []string{"X-User"}},
			auth: ok(),
			req:  get("/", "X-User", "root", "X_User", "root", "x_uSer", "root", "X-Unrelated_Name", "kept"),
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ faAuthSeen, backend http.Header) {
				for k := range backend {
					if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-User") {
						t.Errorf("spoofed %s reached the backend", k)
					}
				}
				faWant(t, w.Code, backend, "X-Unrelated_name", "kept")
			},
		},
		{
			name: "401 returned as-is",
			auth: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sso"`)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Connection", "X-Hop")
				w.Header().Set("X-Hop", "1")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"error":"login"}`)
			},
			req: get("/"),
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ faAuthSeen, backend http.Header) {
				if backend != nil {
					t.Error("the backend was called")
				}
				if w.Code != 401 || w.Body.String() != `{"error":"login"}` {
					t.Errorf("got %d %q", w.Code, w.Body)
				}
				if w.Header().Get("WWW-Authenticate") != `Bearer realm="sso"` || w.Header().Get("Content-Type") != "application/json" {
					t.Errorf("headers %v", w.Header())
				}
				if w.Header().Get("X-Hop") != "" || w.Header().Get("Connection") != "" {
					t.Errorf("hop-by-hop headers copied: %v", w.Header())
				}
			},
		},
		{
			name: "302 returned as-is, not followed",
			auth: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Set-Cookie", "state=xyz")
				w.Header().Set("Location", "/login?rd=%2Fapp")
				w.WriteHeader(http.StatusFound)
			},
			req: get("/app"),
			check: func(t *testing.T, w *httptest.ResponseRecorder, seen faAuthSeen, backend http.Header) {
				if backend != nil || w.Code != http.StatusFound {
					t.Fatalf("status %d, backend called %v", w.Code, backend != nil)
				}
				if got := w.Header().Get("Location"); got != "/login?rd=%2Fapp" {
					t.Errorf("Location = %q", got)
				}
				if w.Header().Get("Set-Cookie") != "state=xyz" {
					t.Error("Set-Cookie lost")
				}
				if seen.uri != "/verify" {
					t.Errorf("the auth service saw %q: redirect followed?", seen.uri)
				}
			},
		},
		{
			name: "subrequest is a GET without body, forwarded headers computed",
			auth: ok(),
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "https://app.example.com/a/b?c=d", strings.NewReader("payload"))
				r.Header.Set("Content-Type", "text/plain")
				r.Header.Set("Cookie", "session=1")
				r.Header.Set("X-Forwarded-Host", "evil.example")
				r.Header.Set("X-Forwarded-Proto", "gopher")
				r.Header.Set("X-Forwarded-Uri", "/admin")
				r.Header.Set("X-Forwarded-Method", "DELETE")
				r.Header.Set("X-Forwarded-For", "10.0.0.1")
				r.Header.Set("X-Forwarded-Prefix", "/x")
				r.Header.Set("Forwarded", "for=10.0.0.1")
				r.Header.Set("Connection", "X-Hop")
				r.Header.Set("X-Hop", "1")
				r.Header.Set("Keep-Alive", "timeout=5")
				return r
			}(),
			check: func(t *testing.T, w *httptest.ResponseRecorder, seen faAuthSeen, backend http.Header) {
				if seen.method != http.MethodGet || seen.body != "" {
					t.Errorf("subrequest %s with body %q", seen.method, seen.body)
				}
				for k, v := range map[string]string{
					"X-Forwarded-Method": "POST", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.com",
					"X-Forwarded-Uri": "/a/b?c=d", "X-Forwarded-For": "198.51.100.7", "Cookie": "session=1",
				} {
					faWant(t, w.Code, seen.header, k, v)
				}
				for _, k := range []string{"X-Forwarded-Prefix", "Forwarded", "X-Hop", "Keep-Alive", "Content-Length"} {
					faWant(t, w.Code, seen.header, k)
				}
				if backend == nil {
					t.Error("the backend was not called")
				}
			},
		},
		{
			name: "trust_forward_header keeps the client's and appends to X-Forwarded-For",
			conf: config.ForwardAuth{TrustForwardHeader: true},
			auth: ok(),
			req:  get("/p", "X-Forwarded-Host", "public.example", "X-Forwarded-Proto", "https", "X-Forwarded-Uri", "/orig", "X-Forwarded-For", "203.0.113.1", "X-Forwarded-Prefix", "/x"),
			check: func(t *testing.T, w *httptest.ResponseRecorder, seen faAuthSeen, _ http.Header) {
				faWant(t, w.Code, seen.header, "X-Forwarded-Host", "public.example")
				faWant(t, w.Code, seen.header, "X-Forwarded-Proto", "https")
				faWant(t, w.Code, seen.header, "X-Forwarded-Uri", "/orig")
				faWant(t, w.Code, seen.header, "X-Forwarded-Method", "GET")
				faWant(t, w.Code, seen.header, "X-Forwarded-For", "203.0.113.1, 198.51.100.7")
				faWant(t, w.Code, seen.header, "X-Forwarded-Prefix", "/x")
			},
		},
		{
			name: "request_headers limits what is sent",
			conf: config.ForwardAuth{RequestHeaders: []string{"Cookie", "Authorization"}},
			auth: ok(),
			req:  get("/", "Cookie", "a=1", "Authorization", "Bearer t", "X-Secret", "s"),
			check: func(t *testing.T, w *httptest.ResponseRecorder, seen faAuthSeen, _ http.Header) {
				faWant(t, w.Code, seen.header, "Cookie", "a=1")
				faWant(t, w.Code, seen.header, "Authorization", "Bearer t")
				faWant(t, w.Code, seen.header, "X-Secret")
				faWant(t, w.Code, seen.header, "X-Forwarded-Method", "GET")
			},
		},
		{
			name: "refusal body over 1 MiB is a 502",
			auth: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write(make([]byte, faMaxBody+1))
			},
			req: get("/"),
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ faAuthSeen, backend http.Header) {
				if w.Code != http.StatusBadGateway || backend != nil {
					t.Errorf("status %d, backend called %v", w.Code, backend != nil)
				}
			},
		},
		{
			name: "refusal body of exactly 1 MiB is passed",
			auth: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write(make([]byte, faMaxBody))
			},
			req: get("/"),
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ faAuthSeen, _ http.Header) {
				if w.Code != http.StatusForbidden || w.Body.Len() != faMaxBody {
					t.Errorf("status %d, %d bytes", w.Code, w.Body.Len())
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, seen, backend := faRun(t, c.conf, c.auth, c.req)
			c.check(t, w, seen, backend)
		})
	}
}

// faWant checks that h[k] is exactly want (absent when want is empty).
func faWant(t *testing.T, code int, h http.Header, k string, want ...string) {
	t.Helper()
	got := h[http.CanonicalHeaderKey(k)]
	if k != http.CanonicalHeaderKey(k) {
		got = h[k]
	}
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
		t.Errorf("(status %d) %s = %q, want %q", code, k, got, want)
	}
}

func TestForwardAuthFailures(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// A listener that accepts and never answers: the subrequest times out.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		mute.Close()
		for c := range accepted {
			c.Close()
		}
	}()

	// A port with nothing listening: the subrequest is refused.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, c := range []struct {
		name    string
		address string
		want    int
	}{
		{"timeout is 504", "http://" + mute.Addr().String() + "/verify", http.StatusGatewayTimeout},
		{"unreachable is 502", "http://" + closedAddr + "/verify", http.StatusBadGateway},
	} {
		t.Run(c.name, func(t *testing.T) {
			fa, err := buildForwardAuth(&config.ForwardAuth{Address: c.address, Timeout: 100 * time.Millisecond}, Env{})
			if err != nil {
				t.Fatal(err)
			}
			defer fa.client.CloseIdleConnections()
			called := false
			h := fa.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != c.want || called {
				t.Errorf("status %d, backend called %v; want %d", w.Code, called, c.want)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v with a 100ms timeout", d)
			}
		})
	}
}

func TestForwardAuthKeepsConnections(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	fa, err := buildForwardAuth(&config.ForwardAuth{Address: srv.URL}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer fa.client.CloseIdleConnections()
	h := fa.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 10 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 sequential subrequests, want 1", n)
	}
}

func TestForwardAuthBuildErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		conf *config.ForwardAuth
	}{
		{"missing block", nil},
		{"no address", &config.ForwardAuth{}},
		{"not http", &config.ForwardAuth{Address: "ftp://auth/"}},
		{"no host", &config.ForwardAuth{Address: "http:///verify"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Build(&config.Middleware{Name: "fa", Kind: config.MWForwardAuth, ForwardAuth: c.conf}, Env{}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
