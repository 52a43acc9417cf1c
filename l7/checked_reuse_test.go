package l7

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7/middleware"
)

// A request served through the proxy twice with one reqInfo — as
// error_pages does, serving the page for the answer it intercepted with
// the same request context — has its second outbound checked, even when
// the first one was found valid and its pooled outbound is the second's:
// the reqInfo's verdict on the first must not be taken for the second.
// A raw backend records what reaches it; no field line is ever injected.
func TestCheckedNotReusedForNextRequest(t *testing.T) {
	addr, heads := headRecorder(t, func(string) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	svc := svcFor("http://" + addr)
	px, _ := newTestProxy(t, svc)
	// twice serves r, then (like error_pages' page request) a clone of it
	// with the same context and a field no HTTP/1 request may carry.
	twice := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		px.ServeHTTP(httptest.NewRecorder(), r)
		page := r.Clone(r.Context())
		page.Header["X-Bad"] = []string{"a\r\nX-Injected: 1"}
		px.ServeHTTP(w, page)
	})
	// The outbound comes back from the pool more often than not (the race
	// detector drops a quarter of sync.Pool's Puts): many requests.
	getEach(t, twice, svc, "/", 32, 0)
	got := heads()
	if len(got) < 32 {
		t.Fatalf("backend saw %d requests, want at least 32", len(got))
	}
	for _, h := range got {
		if strings.Contains(h, "\r\nX-Injected:") || strings.Contains(h, "X-Bad") {
			t.Fatalf("an unchecked field reached the backend:\n%q", h)
		}
	}
}

// The same through the middlewares a configuration can chain: error_pages
// over a headers middleware that sets a field with a control byte
// (accepted: only CR, LF and NUL are refused at load), over strip_prefix
// (which copies the header) and a headers middleware that removes the
// field again. The proxied request is valid; the page request error_pages
// then makes (same context, its own copy of the header, holding the field)
// must still be checked, not written as it is.
func TestCheckedNotReusedByErrorPage(t *testing.T) {
	svc, px, heads := errorPageBackend(t)
	env := middleware.Env{Service: func(string) http.Handler { return px }}
	var h http.Handler = px
	for _, m := range []*config.Middleware{ // innermost first
		{Name: "unset", Kind: "headers", Headers: &config.Headers{Request: config.HeaderOps{Remove: []string{"X-A"}}}},
		{Name: "strip", Kind: "strip_prefix", StripPrefix: &config.StripPrefix{Prefixes: []string{"/p"}}},
		{Name: "set", Kind: "headers", Headers: &config.Headers{Request: config.HeaderOps{Set: map[string]string{"X-A": "a\x01b"}}}},
		{Name: "pages", Kind: "error_pages", ErrorPages: &config.ErrorPages{Statuses: []config.StatusRange{{Lo: 404, Hi: 404}}, Service: svc.Name, Path: "/err"}},
	} {
		mw, err := middleware.Build(m, env)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		h = mw(h)
	}
	getEach(t, h, svc, "/p/x", 32, http.StatusNotFound)
	got := heads()
	if len(got) < 32 {
		t.Fatalf("backend saw %d requests, want at least 32", len(got))
	}
	for _, h := range got {
		if strings.Contains(h, "\x01") {
			t.Fatalf("an unchecked field reached the backend:\n%q", h)
		}
	}
}

// errorPageBackend is a backend that answers /err with a page and any other
// path with 404, as the service of a proxy that error_pages can serve its
// page from; heads are the request heads it got.
func errorPageBackend(t *testing.T) (svc *config.Service, px *Proxy, heads func() []string) {
	t.Helper()
	addr, heads := headRecorder(t, func(head string) string {
		if strings.HasPrefix(head, "GET /err ") {
			return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npage"
		}
		return "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"
	})
	svc = svcFor("http://" + addr)
	px, _ = newTestProxy(t, svc)
	return svc, px, heads
}

// headRecorder is a raw HTTP/1 backend that answers each request head with
// answer(head) and records the heads; heads returns those seen so far.
func headRecorder(t *testing.T, answer func(head string) string) (addr string, heads func() []string) {
	var mu sync.Mutex
	var seen []string
	addr, _ = rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			head, ok := readHead(br)
			if !ok {
				return
			}
			mu.Lock()
			seen = append(seen, head)
			mu.Unlock()
			if _, err := io.WriteString(c, answer(head)); err != nil {
				return
			}
		}
	})
	return addr, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// getEach serves h as svc's one route behind an Entry and GETs path n
// times, each answer with status want (0: any).
func getEach(t *testing.T, h http.Handler, svc *config.Service, path string, n, want int) {
	t.Helper()
	router := routeAll(t, &Route{Config: &config.HTTPRoute{Name: "r", Service: svc.Name}, Handler: h})
	ts := httptest.NewServer(NewEntry("web", router, nil, nil))
	defer ts.Close()
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	for range n {
		resp, err := c.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want != 0 && resp.StatusCode != want {
			t.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
	}
}
