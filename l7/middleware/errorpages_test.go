package middleware

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
)

// pageService answers "page for PATH" as HTML, or fails with 502 when its
// path holds "broken".
var pageService = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.URL.Path, "broken") {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "page for %s %s q=%q range=%q", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Range"))
})

func errorPagesMW(t testing.TB, path string) Middleware {
	t.Helper()
	env := Env{Service: func(name string) http.Handler {
		if name == "pages" {
			return pageService
		}
		return nil
	}}
	service := "pages"
	if strings.Contains(path, "unknown") {
		service = "unknown"
	}
	mw, err := Build(&config.Middleware{Name: "e", Kind: config.MWErrorPages, ErrorPages: &config.ErrorPages{
		Statuses: []config.StatusRange{{Lo: 500, Hi: 599}, {Lo: 401, Hi: 401}}, Service: service, Path: path,
	}}, env)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

func TestErrorPages(t *testing.T) {
	for _, tc := range []struct {
		name     string
		path     string
		method   string
		code     int
		header   map[string]string
		wantBody string
		wantHdr  map[string]string // "" value: absent
	}{
		{name: "503 replaced", path: "/errors/{status}.html", code: 503, header: map[string]string{"X-Backend": "1", "Retry-After": "5", "Content-Type": "application/json", "Content-Length": "12"},
			wantBody: `page for GET /errors/503.html q="" range=""`,
			wantHdr:  map[string]string{"Content-Type": "text/html", "Cache-Control": "no-store", "Retry-After": "5", "X-Backend": ""}},
		{name: "401 keeps WWW-Authenticate", path: "/e/{status}", code: 401, header: map[string]string{"WWW-Authenticate": `Basic realm="x"`},
			wantBody: `page for GET /e/401 q="" range=""`, wantHdr: map[string]string{"WWW-Authenticate": `Basic realm="x"`}},
		{name: "POST gets the page by GET", path: "/e/{status}", method: http.MethodPost, code: 500,
			wantBody: `page for GET /e/500 q="" range=""`},
		{name: "404 untouched", path: "/e/{status}", code: 404, header: map[string]string{"X-Backend": "1"},
			wantBody: "backend body", wantHdr: map[string]string{"X-Backend": "1"}},
		{name: "200 untouched", path: "/e/{status}", code: 200, wantBody: "backend body"},
		{name: "page service fails", path: "/broken/{status}", code: 503, header: map[string]string{"X-Backend": "1", "Content-Type": "application/json"},
			wantBody: "503 Service Unavailable\n", wantHdr: map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Backend": "", "Cache-Control": ""}},
		{name: "unknown service", path: "/unknown/{status}", code: 502,
			wantBody: "502 Bad Gateway\n", wantHdr: map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := errorPagesMW(t, tc.path)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, "backend body")
			}))
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "/app/x?q=1", strings.NewReader("payload"))
			req.Header.Set("Range", "bytes=0-10")
			rec := httptest.NewRecorder()
			rec.Header().Set("X-Request-Id", "rid-1") // as the Entry sets it
			h.ServeHTTP(rec, req)
			if got := rec.Header().Values("X-Request-Id"); len(got) != 1 || got[0] != "rid-1" {
				t.Errorf("X-Request-Id %q, want the entry's [rid-1]", got)
			}
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
			if got := rec.Body.String(); got != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
			for k, v := range tc.wantHdr {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestErrorPagesStreams checks that a successful response goes through
// unbuffered: each chunk reaches the client on Flush.
func TestErrorPagesStreams(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ack := make(chan struct{})
	h := errorPagesMW(t, "/e/{status}")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			}
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	br := bufio.NewReader(res.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("chunk %d\n", i) {
			t.Fatalf("chunk %d: %q, %v", i, line, err)
		}
		ack <- struct{}{}
	}
}

func TestErrorPagesConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    config.ErrorPages
	}{
		{name: "no statuses", c: config.ErrorPages{Service: "s", Path: "/"}},
		{name: "bad range", c: config.ErrorPages{Statuses: []config.StatusRange{{Lo: 599, Hi: 500}}, Service: "s", Path: "/"}},
		{name: "no service", c: config.ErrorPages{Statuses: []config.StatusRange{{Lo: 500, Hi: 599}}, Path: "/"}},
		{name: "relative path", c: config.ErrorPages{Statuses: []config.StatusRange{{Lo: 500, Hi: 599}}, Service: "s", Path: "e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(&config.Middleware{Kind: config.MWErrorPages, ErrorPages: &tc.c}, Env{}); err == nil {
				t.Error("no error")
			}
		})
	}
}
