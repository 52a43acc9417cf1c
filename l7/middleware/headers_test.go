package middleware

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
)

func hdBuild(t testing.TB, c *config.Headers) Middleware {
	t.Helper()
	mw, err := Build(&config.Middleware{Name: "hd", Kind: config.MWHeaders, Headers: c}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

// hdRun serves r through headers in front of backend; it returns the
// response and the request the backend saw (nil when not called).
func hdRun(t *testing.T, c *config.Headers, backend http.HandlerFunc, r *http.Request) (*httptest.ResponseRecorder, *http.Request) {
	t.Helper()
	var seen *http.Request
	h := hdBuild(t, c)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Clone(r.Context())
		if backend != nil {
			backend(w, r)
		}
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, seen
}

func hdReq(method, target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// hdSets answers with the given headers, then 200.
func hdSets(hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		_, _ = io.WriteString(w, "body")
	}
}

func TestHeaders(t *testing.T) {
	type check func(t *testing.T, w *httptest.ResponseRecorder, seen *http.Request)
	want := func(from func(w *httptest.ResponseRecorder, seen *http.Request) http.Header, k string, v ...string) check {
		return func(t *testing.T, w *httptest.ResponseRecorder, seen *http.Request) {
			t.Helper()
			faWant(t, w.Code, from(w, seen), k, v...)
		}
	}
	req := func(_ *httptest.ResponseRecorder, seen *http.Request) http.Header { return seen.Header }
	resp := func(w *httptest.ResponseRecorder, _ *http.Request) http.Header { return w.Result().Header }
	tlsReq := func(r *http.Request) *http.Request { r.TLS = &tls.ConnectionState{}; return r }

	cases := []struct {
		name    string
		conf    config.Headers
		backend http.HandlerFunc
		req     *http.Request
		checks  []check
	}{
		{
			name: "request set, add, remove",
			conf: config.Headers{Request: config.HeaderOps{
				Set:    map[string]string{"X-Set": "new", "x-lower": "canon"},
				Add:    map[string]string{"X-Add": "b", "X-Fresh": "f"},
				Remove: []string{"X-Remove", "x-remove-lower"},
			}},
			req: hdReq("GET", "/", "X-Set", "old", "X-Set", "older", "X-Add", "a", "X-Remove", "1", "X-Remove-Lower", "2"),
			checks: []check{
				want(req, "X-Set", "new"), want(req, "X-Lower", "canon"),
				want(req, "X-Add", "a", "b"), want(req, "X-Fresh", "f"),
				want(req, "X-Remove"), want(req, "X-Remove-Lower"),
			},
		},
		{
			name: "request remove then set of the same header sets it",
			conf: config.Headers{Request: config.HeaderOps{Set: map[string]string{"X-Id": "proxy"}, Remove: []string{"X-Id"}}},
			req:  hdReq("GET", "/", "X-Id", "client"),
			checks: []check{
				want(req, "X-Id", "proxy"),
			},
		},
		{
			name: "request set of Host changes the host",
			conf: config.Headers{Request: config.HeaderOps{Set: map[string]string{"Host": "backend.internal"}}},
			req:  hdReq("GET", "http://public.example/"),
			checks: []check{func(t *testing.T, _ *httptest.ResponseRecorder, seen *http.Request) {
				if seen.Host != "backend.internal" {
					t.Errorf("Host = %q", seen.Host)
				}
			}},
		},
		{
			name: "response set, add, remove",
			conf: config.Headers{Response: config.HeaderOps{
				Set:    map[string]string{"Server": "proxynow"},
				Add:    map[string]string{"X-Add": "b", "Cache-Control": "no-transform"},
				Remove: []string{"X-Powered-By"},
			}},
			backend: hdSets("Server", "nginx", "X-Powered-By", "PHP", "X-Add", "a"),
			req:     hdReq("GET", "/"),
			checks: []check{
				want(resp, "Server", "proxynow"), want(resp, "X-Add", "a", "b"),
				want(resp, "Cache-Control", "no-transform"), want(resp, "X-Powered-By"),
			},
		},
		{
			name:    "response ops apply when the backend writes nothing",
			conf:    config.Headers{Response: config.HeaderOps{Set: map[string]string{"X-Set": "1"}}},
			backend: func(http.ResponseWriter, *http.Request) {},
			req:     hdReq("GET", "/"),
			checks:  []check{want(resp, "X-Set", "1")},
		},
		{
			name:    "security headers added, the backend's kept",
			conf:    config.Headers{Security: true},
			backend: hdSets("X-Frame-Options", "DENY"),
			req:     hdReq("GET", "/"),
			checks: []check{
				want(resp, "X-Frame-Options", "DENY"), want(resp, "X-Content-Type-Options", "nosniff"),
				want(resp, "Referrer-Policy", "strict-origin-when-cross-origin"),
			},
		},
		{
			name:    "response remove has the last word over security",
			conf:    config.Headers{Security: true, Response: config.HeaderOps{Remove: []string{"X-Frame-Options"}}},
			backend: hdSets(),
			req:     hdReq("GET", "/"),
			checks:  []check{want(resp, "X-Frame-Options"), want(resp, "X-Content-Type-Options", "nosniff")},
		},
		{
			name:    "HSTS on TLS",
			conf:    config.Headers{HSTS: &config.HSTS{MaxAge: 2 * time.Hour, IncludeSubdomains: true, Preload: true}},
			backend: hdSets(),
			req:     tlsReq(hdReq("GET", "https://a.example/")),
			checks:  []check{want(resp, "Strict-Transport-Security", "max-age=7200; includeSubDomains; preload")},
		},
		{
			name:    "HSTS default max_age",
			conf:    config.Headers{HSTS: &config.HSTS{}},
			backend: hdSets(),
			req:     tlsReq(hdReq("GET", "https://a.example/")),
			checks:  []check{want(resp, "Strict-Transport-Security", "max-age=31536000")},
		},
		{
			name:    "no HSTS over plain HTTP",
			conf:    config.Headers{HSTS: &config.HSTS{MaxAge: time.Hour}},
			backend: hdSets(),
			req:     hdReq("GET", "http://a.example/"),
			checks:  []check{want(resp, "Strict-Transport-Security")},
		},
		{
			name:    "the backend's HSTS is kept",
			conf:    config.Headers{HSTS: &config.HSTS{MaxAge: time.Hour}},
			backend: hdSets("Strict-Transport-Security", "max-age=0"),
			req:     tlsReq(hdReq("GET", "https://a.example/")),
			checks:  []check{want(resp, "Strict-Transport-Security", "max-age=0")},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, seen := hdRun(t, &c.conf, c.backend, c.req)
			if seen == nil {
				t.Fatal("the backend was not called")
			}
			for _, ch := range c.checks {
				ch(t, w, seen)
			}
		})
	}
}

func TestHeadersCORS(t *testing.T) {
	app := "https://app.example.com"
	conf := config.Headers{CORS: &config.CORS{
		AllowOrigins:     []string{app, "https://other.example.com"},
		AllowMethods:     []string{"GET", "PUT"},
		AllowHeaders:     []string{"X-Token", "Content-Type"},
		ExposeHeaders:    []string{"X-Request-Id", "X-Total"},
		AllowCredentials: true,
		MaxAge:           10 * time.Minute,
	}}
	star := config.Headers{CORS: &config.CORS{AllowOrigins: []string{"*"}}}
	preflight := func(origin, method, hdrs string) *http.Request {
		r := hdReq("OPTIONS", "/api", "Origin", origin, "Access-Control-Request-Method", method)
		if hdrs != "" {
			r.Header.Set("Access-Control-Request-Headers", hdrs)
		}
		return r
	}
	cases := []struct {
		name        string
		conf        config.Headers
		req         *http.Request
		backend     http.HandlerFunc
		wantBackend bool
		wantStatus  int
		want        map[string]string // "" means absent
	}{
		{
			name: "preflight allowed", conf: conf, req: preflight(app, "PUT", "x-token, content-type"), wantStatus: 204,
			want: map[string]string{
				"Access-Control-Allow-Origin": app, "Access-Control-Allow-Methods": "GET, PUT",
				"Access-Control-Allow-Headers": "x-token, content-type", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age": "600", "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
			},
		},
		{
			name: "preflight origin matched without case", conf: conf, req: preflight("HTTPS://APP.example.com", "GET", ""), wantStatus: 204,
			want: map[string]string{"Access-Control-Allow-Origin": "HTTPS://APP.example.com", "Access-Control-Allow-Headers": ""},
		},
		{
			name: "preflight from another origin denied", conf: conf, req: preflight("https://evil.example", "GET", ""), wantStatus: 204,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Access-Control-Allow-Credentials": ""},
		},
		{
			name: "preflight of a method not allowed denied", conf: conf, req: preflight(app, "DELETE", ""), wantStatus: 204,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""},
		},
		{
			name: "preflight of a header not allowed denied", conf: conf, req: preflight(app, "PUT", "x-token, x-admin"), wantStatus: 204,
			want: map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "OPTIONS without Access-Control-Request-Method reaches the backend", conf: conf,
			req: hdReq("OPTIONS", "/api", "Origin", app), backend: hdSets("Allow", "GET, OPTIONS"), wantBackend: true, wantStatus: 200,
			want: map[string]string{"Allow": "GET, OPTIONS", "Access-Control-Allow-Origin": app},
		},
		{
			name: "actual request from an allowed origin", conf: conf, req: hdReq("GET", "/api", "Origin", app),
			backend: hdSets("Access-Control-Allow-Origin", "*", "Vary", "Accept-Encoding"), wantBackend: true, wantStatus: 200,
			want: map[string]string{
				"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-Id, X-Total", "Vary": "Accept-Encoding\x00Origin",
			},
		},
		{
			name: "actual request from another origin", conf: conf, req: hdReq("GET", "/api", "Origin", "https://evil.example"),
			backend: hdSets("Vary", "origin"), wantBackend: true, wantStatus: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": "", "Vary": "origin"},
		},
		{
			name: "request without Origin still varies", conf: conf, req: hdReq("GET", "/api"), backend: hdSets(), wantBackend: true, wantStatus: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"},
		},
		{
			name: "star without credentials", conf: star, req: hdReq("GET", "/", "Origin", app), backend: hdSets(), wantBackend: true, wantStatus: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "", "Vary": ""},
		},
		{
			name: "star preflight uses the default methods and headers", conf: star, req: preflight(app, "POST", "Content-Type"), wantStatus: 204,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, POST", "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": ""},
		},
		{
			name: "star with credentials echoes the origin",
			conf: config.Headers{CORS: &config.CORS{AllowOrigins: []string{"*"}, AllowCredentials: true, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}}},
			req:  preflight(app, "PATCH", "X-Anything"), wantStatus: 204,
			want: map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Methods": "PATCH", "Access-Control-Allow-Headers": "X-Anything", "Access-Control-Allow-Credentials": "true"},
		},
		{
			name: "preflight answer gets security headers too", conf: config.Headers{CORS: star.CORS, Security: true},
			req: preflight(app, "GET", ""), wantStatus: 204, want: map[string]string{"X-Content-Type-Options": "nosniff"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, seen := hdRun(t, &c.conf, c.backend, c.req)
			if (seen != nil) != c.wantBackend || w.Code != c.wantStatus {
				t.Fatalf("status %d, backend called %v; want %d, %v", w.Code, seen != nil, c.wantStatus, c.wantBackend)
			}
			for k, v := range c.want {
				got := strings.Join(w.Result().Header.Values(k), "\x00")
				if got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHeadersBuildErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		conf *config.Headers
	}{
		{"missing block", nil},
		{"bad name", &config.Headers{Request: config.HeaderOps{Set: map[string]string{"X Bad": "1"}}}},
		{"line break in value", &config.Headers{Response: config.HeaderOps{Add: map[string]string{"X-A": "1\r\nX-B: 2"}}}},
		{"cors without origins", &config.Headers{CORS: &config.CORS{}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Build(&config.Middleware{Name: "hd", Kind: config.MWHeaders, Headers: c.conf}, Env{}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestHeadersWriterInterfaces checks, through a real server, that the
// response wrapper keeps flushing, hijacking, ResponseController and 1xx
// responses working.
func TestHeadersWriterInterfaces(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	conf := &config.Headers{Security: true, Response: config.HeaderOps{Set: map[string]string{"X-Set": "1"}}}

	t.Run("Flusher sends the decorated header at once", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(hdBuild(t, conf)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			f, ok := w.(http.Flusher)
			if !ok {
				t.Error("not an http.Flusher")
				return
			}
			_, _ = io.WriteString(w, "first")
			f.Flush()
			<-release
			_, _ = io.WriteString(w, "second")
		})))
		defer srv.Close()
		defer srv.Client().CloseIdleConnections()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			close(release)
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 5)
		_, err = io.ReadFull(resp.Body, buf)
		close(release)
		if err != nil || string(buf) != "first" {
			t.Fatalf("read %q, %v before the handler finished", buf, err)
		}
		if resp.Header.Get("X-Set") != "1" || resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" {
			t.Errorf("header not decorated: %v", resp.Header)
		}
		rest, _ := io.ReadAll(resp.Body)
		if string(rest) != "second" {
			t.Errorf("rest %q", rest)
		}
	})

	t.Run("Hijacker and ResponseController reach the connection", func(t *testing.T) {
		srv := httptest.NewServer(hdBuild(t, conf)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if _, ok := w.(http.Hijacker); !ok {
				t.Error("not an http.Hijacker")
			}
			rc := http.NewResponseController(w)
			if err := rc.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Errorf("SetWriteDeadline through Unwrap: %v", err)
			}
			conn, brw, err := rc.Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nX-Raw: 1\r\nContent-Length: 6\r\nConnection: close\r\n\r\nraw ok")
			_ = brw.Flush()
		})))
		defer srv.Close()
		defer srv.Client().CloseIdleConnections()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "raw ok" || resp.Header.Get("X-Raw") != "1" {
			t.Errorf("got %q %v", b, resp.Header)
		}
	})

	t.Run("1xx passes undecorated, the final response is decorated", func(t *testing.T) {
		srv := httptest.NewServer(hdBuild(t, conf)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			_, _ = io.WriteString(w, "done")
		})))
		defer srv.Close()
		defer srv.Client().CloseIdleConnections()
		var early textproto.MIMEHeader
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				if code == http.StatusEarlyHints {
					early = h
				}
				return nil
			},
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if early == nil || early.Get("Link") == "" || early.Get("X-Set") != "" {
			t.Errorf("103 header %v", early)
		}
		if resp.Header.Get("X-Set") != "1" {
			t.Errorf("final header not decorated: %v", resp.Header)
		}
	})

	t.Run("WebSocket upgrade through httputil.ReverseProxy", func(t *testing.T) {
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "websocket" {
				http.Error(w, "no upgrade", http.StatusBadRequest)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("backend hijack: %v", err)
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			line, _ := brw.ReadString('\n')
			_, _ = brw.WriteString("echo " + line)
			_ = brw.Flush()
		}))
		defer backend.Close()
		u, _ := url.Parse(backend.URL)
		proxy := httputil.NewSingleHostReverseProxy(u)
		front := httptest.NewServer(hdBuild(t, conf)(proxy))
		defer front.Close()

		conn, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", resp.StatusCode)
		}
		_, _ = io.WriteString(conn, "ping\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo ping\n" {
			t.Errorf("read %q, %v", line, err)
		}
	})
}

// BenchmarkHeaders is a typical headers block on a request from an
// allowed CORS origin over TLS: request set/add/remove, response
// set/remove, security and HSTS.
func BenchmarkHeaders(b *testing.B) {
	h := hdBuild(b, &config.Headers{
		Request: config.HeaderOps{
			Set:    map[string]string{"X-Real-Env": "prod"},
			Add:    map[string]string{"X-Via": "proxynow"},
			Remove: []string{"X-Debug"},
		},
		Response: config.HeaderOps{
			Set:    map[string]string{"Server": "proxynow"},
			Remove: []string{"X-Powered-By"},
		},
		CORS:     &config.CORS{AllowOrigins: []string{"https://app.example.com"}, ExposeHeaders: []string{"X-Request-Id"}},
		HSTS:     &config.HSTS{MaxAge: 8760 * time.Hour},
		Security: true,
	})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["X-Powered-By"] = hdPowered
		w.WriteHeader(http.StatusOK)
	}))
	r := httptest.NewRequest(http.MethodGet, "https://a.example/", nil)
	r.Header.Set("Origin", "https://app.example.com")
	debug := []string{"1"}
	w := &baNopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r.Header["X-Debug"] = debug
		delete(r.Header, "X-Via")
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

var hdPowered = []string{"PHP"}
