package l7

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7/middleware"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// bcrypt("secret") at cost 4.
const testHash = "$2a$04$ukZWu3Uv0/mEMlTifWmsZu6wbBCB179P/ukDIhekrJr8Tt1NsDNpi"

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// observed is an entrypoint "web" with routes "a" (basic_auth, then a
// handler chosen by path) and "b" (503), wrapped in an Observer.
func observed(t testing.TB, m *Metrics, log *accesslog.Writer) http.Handler {
	t.Helper()
	auth, err := middleware.Build(&config.Middleware{Name: "auth", Kind: config.MWBasicAuth,
		BasicAuth: &config.BasicAuth{Users: []string{"alice:" + testHash}, Realm: "r"}}, middleware.Env{ClientIP: ClientIP})
	if err != nil {
		t.Fatal(err)
	}
	a := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a/hints":
			w.WriteHeader(http.StatusEarlyHints)
			w.Write([]byte("hello"))
		case "/a/silent":
		default:
			w.Write([]byte("hello"))
		}
	}))
	b := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	cfgA := &config.HTTPRoute{Name: "a", PathPrefix: "/a/", Service: "sa"}
	cfgB := &config.HTTPRoute{Name: "b", PathPrefix: "/b/", Service: "sb"}
	router, err := NewRouter([]*Route{{Config: cfgA, Handler: a}, {Config: cfgB, Handler: b}})
	if err != nil {
		t.Fatal(err)
	}
	return NewObserver(NewEntry("web", router, nil, nil), "web", []*config.HTTPRoute{cfgA, cfgB}, m, accesslog.NewSwitch(log))
}

func TestObserverMetricsAndLog(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var out lockedBuffer
	log := accesslog.New(&out, accesslog.Options{})
	h := observed(t, m, log)
	alice := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret"))

	send := func(method, target string, proto int, user bool, ctx context.Context) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		if proto == 2 {
			r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		}
		if user {
			r.Header.Set("Authorization", alice)
		}
		if ctx != nil {
			r = r.WithContext(ctx)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for range 3 {
		send("GET", "/a/x", 1, true, nil)
	}
	send("GET", "/a/x", 2, true, nil)
	send("GET", "/a/x", 1, false, nil) // 401 from basic_auth
	send("PURGE", "/a/x", 1, true, nil)
	send("GET", "/a/hints", 1, true, nil)
	send("POST", "/b/y", 1, false, nil)
	send("GET", "/nowhere", 1, false, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	send("GET", "/a/silent", 1, true, ctx)

	count := func(route, svc, method, code, proto string) float64 {
		return testutil.ToFloat64(m.requests.WithLabelValues("web", route, svc, method, code, proto))
	}
	tests := []struct {
		name                            string
		route, svc, method, code, proto string
		want                            float64
	}{
		{"HTTP/1.1 GETs and the 103-then-200", "a", "sa", "GET", "2xx", "HTTP/1.1", 4},
		{"HTTP/2", "a", "sa", "GET", "2xx", "HTTP/2", 1},
		{"refused by basic_auth, and the client gone before an answer (499)", "a", "sa", "GET", "4xx", "HTTP/1.1", 2},
		{"unknown method", "a", "sa", "other", "2xx", "HTTP/1.1", 1},
		{"503", "b", "sb", "POST", "5xx", "HTTP/1.1", 1},
		{"no route", "", "", "GET", "4xx", "HTTP/1.1", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := count(tc.route, tc.svc, tc.method, tc.code, tc.proto); got != tc.want {
				t.Errorf("requests{%s %s %s %s %s} = %v, want %v", tc.route, tc.svc, tc.method, tc.code, tc.proto, got, tc.want)
			}
		})
	}
	if n := testutil.CollectAndCount(m.duration); n != 3 {
		t.Errorf("duration series: %d, want 3 (a, b, unmatched)", n)
	}
	if g := testutil.ToFloat64(m.inFlight.WithLabelValues("web")); g != 0 {
		t.Errorf("in flight after the requests: %v", g)
	}

	if err := log.CloseWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d access log lines, want 10:\n%s", len(lines), out.String())
	}
	var first, gone map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[9]), &gone)
	want := map[string]any{"client": "192.0.2.1", "method": "GET", "host": "example.com", "path": "/a/x",
		"protocol": "HTTP/1.1", "status": 200.0, "bytes": 5.0, "entrypoint": "web", "route": "a", "service": "sa", "user": "alice"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("line 1 %s = %v, want %v", k, first[k], v)
		}
	}
	if first["request_id"] == "" || first["request_id"] == nil {
		t.Errorf("line 1 has no request id: %s", lines[0])
	}
	if gone["status"] != 499.0 {
		t.Errorf("cancelled request logged with status %v, want 499", gone["status"])
	}
	if strings.Contains(lines[4], `"user"`) {
		t.Errorf("refused request logged a user: %s", lines[4])
	}
}

// TestObserverKeepsWriterFeatures checks that streaming and upgrades work
// through the recorder (Flusher, Hijacker, ResponseController).
func TestObserverKeepsWriterFeatures(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flush":
			w.Write([]byte("part1"))
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		case "/hijack":
			c, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nhi")
			brw.Flush()
		}
	})
	route := &config.HTTPRoute{Name: "r", Service: "s"}
	router, err := NewRouter([]*Route{{Config: route, Handler: inner, Upgrades: true}})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	ts := httptest.NewServer(NewObserver(NewEntry("web", router, nil, nil), "web", []*config.HTTPRoute{route}, m, nil))
	defer ts.Close()
	if resp, body := get(t, ts.URL+"/flush", nil); resp.StatusCode != 200 || body != "part1" {
		t.Errorf("/flush: %d %q", resp.StatusCode, body)
	}
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	c.Close()
	// The hijacked request is counted as 101 once its handler returned.
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.requests.WithLabelValues("web", "r", "s", "GET", "1xx", "HTTP/1.1")) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the upgraded request was not counted as 1xx")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
