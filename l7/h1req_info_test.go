package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7/middleware"
)

// Tests of the reqInfo the HTTP/1 server allocates with each request
// (h1req.info, taken by the Entry through h1ctx.takeInfo), through the
// server itself: net/http's server (httptest) never takes that path.

// serveEntry serves h as the one route of an Entry (peers on loopback
// trusted, so that a client's X-Request-Id is kept) under an Observer,
// on the HTTP/1 server; it returns the server's address.
func serveEntry(t *testing.T, h http.Handler, upgrades bool) string {
	t.Helper()
	rc := &config.HTTPRoute{Name: "r", Service: "svc"}
	router := routeAll(t, &Route{Config: rc, Handler: h, Upgrades: upgrades})
	e := NewEntry("web", router, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
	_, addr := startH1Server(t, NewObserver(e, "web", []*config.HTTPRoute{rc}, nil, nil), ServerOptions{})
	return addr
}

// sharesH1req reports whether ri is the reqInfo allocated with hc's
// request, in the same h1req.
func sharesH1req(ri *reqInfo, hc *h1ctx) bool {
	return uintptr(unsafe.Pointer(ri))-unsafe.Offsetof(h1req{}.info) ==
		uintptr(unsafe.Pointer(hc))-unsafe.Offsetof(h1req{}.ctx)
}

// Pipelined requests on one connection each get the reqInfo allocated with
// their own request, and nothing the server does for the requests after
// it writes into one once its handler has returned: goroutines the
// handlers leave behind keep reading their reqInfo while the next
// requests are served (the race detector sees any write), and find it as
// its handler left it.
func TestH1ReqInfoOutlivesHandler(t *testing.T) {
	const n = 8
	type seen struct {
		ri *reqInfo
		hc *h1ctx
	}
	var (
		mu      sync.Mutex
		all     []seen
		errs    []string
		readers sync.WaitGroup
	)
	stop := make(chan struct{})
	fail := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri, ok := r.Context().(*reqInfo)
		if !ok {
			http.Error(w, fmt.Sprintf("context %T, want the Entry's reqInfo", r.Context()), http.StatusInternalServerError)
			return
		}
		hc, ok := ri.Context.(*h1ctx)
		if !ok {
			http.Error(w, fmt.Sprintf("reqInfo over %T, want the server's h1ctx", ri.Context), http.StatusInternalServerError)
			return
		}
		mu.Lock()
		all = append(all, seen{ri, hc})
		mu.Unlock()
		want := r.Header.Get("X-Request-Id")
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if ri.requestID != want || ri.idHdr[0] != want || ri.route != "r" || ri.entrypoint != "web" ||
					ri.Context != hc || !ri.client.IsLoopback() || ri.checked != nil || ri.w1xx != nil {
					fail("request %s: its reqInfo changed after its handler: id %q route %q entrypoint %q",
						want, ri.requestID, ri.route, ri.entrypoint)
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
		io.WriteString(w, ri.requestID)
	})
	addr := serveEntry(t, h, false)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var reqs strings.Builder
	for i := range n {
		fmt.Fprintf(&reqs, "GET /%d HTTP/1.1\r\nHost: x\r\nX-Request-Id: id-%d\r\n\r\n", i, i)
	}
	if _, err := io.WriteString(c, reqs.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("id-%d", i)
		if resp.StatusCode != http.StatusOK || string(b) != want || resp.Header.Get("X-Request-Id") != want {
			t.Fatalf("response %d: %d %q (X-Request-Id %q), want 200 %q", i, resp.StatusCode, b, resp.Header.Get("X-Request-Id"), want)
		}
	}
	close(stop)
	readers.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		t.Error(e)
	}
	if len(all) != n {
		t.Fatalf("%d handlers ran, want %d", len(all), n)
	}
	for i, s := range all {
		if !sharesH1req(s.ri, s.hc) {
			t.Errorf("request %d: the Entry's reqInfo is not the one allocated with the request", i)
		}
		if s.hc.info != nil {
			t.Errorf("request %d: the request's reqInfo slot was not taken", i)
		}
		select {
		case <-s.ri.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("request %d: context not canceled after its handler", i)
		}
		for _, o := range all[:i] {
			if o.ri == s.ri || o.hc == s.hc {
				t.Errorf("request %d shares its reqInfo or context with an earlier one", i)
			}
		}
	}
}

// error_pages serves the page for an intercepted answer with a second
// request on the same reqInfo; over the HTTP/1 server that reqInfo is the
// one in the client request's h1req. Keep-alive requests on one client
// connection: each page request reaches the backend with its own
// request's id (the reqInfo is the request's, not one of an earlier
// request), and the client gets the page with that id too.
func TestH1ReqInfoErrorPageKeepAlive(t *testing.T) {
	svc, px, heads := errorPageBackend(t)
	mw, err := middleware.Build(&config.Middleware{Name: "pages", Kind: "error_pages",
		ErrorPages: &config.ErrorPages{Statuses: []config.StatusRange{{Lo: 404, Hi: 404}}, Service: svc.Name, Path: "/err"}},
		middleware.Env{Service: func(string) http.Handler { return px }})
	if err != nil {
		t.Fatal(err)
	}
	front := serveEntry(t, mw(px), false)
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	const n = 16
	for i := range n {
		fmt.Fprintf(c, "GET /x%d HTTP/1.1\r\nHost: x\r\nX-Request-Id: id-%d\r\n\r\n", i, i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || string(b) != "page" {
			t.Fatalf("request %d: %d %q, want 404 \"page\"", i, resp.StatusCode, b)
		}
		if id := resp.Header.Values("X-Request-Id"); len(id) != 1 || id[0] != fmt.Sprintf("id-%d", i) {
			t.Fatalf("request %d: the page came with X-Request-Id %q", i, id)
		}
	}
	got := heads()
	if len(got) != 2*n {
		t.Fatalf("backend saw %d requests, want %d", len(got), 2*n)
	}
	for i := range n {
		id := fmt.Sprintf("\r\nX-Request-Id: id-%d\r\n", i)
		for _, h := range got[2*i : 2*i+2] {
			if !strings.Contains(h, id) {
				t.Fatalf("request %d: the backend saw a request without its id %q:\n%q", i, id, h)
			}
		}
		if !strings.HasPrefix(got[2*i+1], "GET /err ") {
			t.Fatalf("request %d: second backend request is not the page's:\n%q", i, got[2*i+1])
		}
	}
}

// HTTP/2 with prior knowledge on the HTTP/1 server's port is handed to the
// HTTP/2 server: its requests have no h1req (their reqInfo is allocated
// with the stream), and each stream gets a reqInfo of its own over its own
// context, concurrent ones included.
func TestH2cReqInfoOwn(t *testing.T) {
	const n = 8
	var (
		mu   sync.Mutex
		seen = map[*reqInfo]bool{}
	)
	all := make(chan struct{})
	arrived := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri, ok := r.Context().(*reqInfo)
		if !ok {
			http.Error(w, fmt.Sprintf("context %T, want the Entry's reqInfo", r.Context()), http.StatusInternalServerError)
			return
		}
		if hc, ok := ri.Context.(*h1ctx); r.ProtoMajor != 2 || ok && hc.info != nil {
			http.Error(w, "an HTTP/2 request with an HTTP/1 request's reqInfo", http.StatusInternalServerError)
			return
		}
		mu.Lock()
		dup := seen[ri]
		seen[ri] = true
		if arrived++; arrived == n {
			close(all)
		}
		mu.Unlock()
		if dup {
			http.Error(w, "a reqInfo shared by two streams", http.StatusInternalServerError)
			return
		}
		select { // all n streams at once
		case <-all:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, ri.requestID)
	})
	addr := serveEntry(t, h, false)
	tr := h2Client(false)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			want := fmt.Sprintf("h2-%d", i)
			req.Header.Set("X-Request-Id", want)
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != want {
				err = fmt.Errorf("stream %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d reqInfos for %d streams", len(seen), n)
	}
}

// The client going away while the handler waits cancels the request's
// reqInfo (the one allocated with the request, over its h1ctx): the
// watcher cancels from its own goroutine while the handler reads the
// reqInfo.
func TestH1ReqInfoCanceledWhenClientGoes(t *testing.T) {
	got := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri, ok := r.Context().(*reqInfo)
		if !ok {
			got <- fmt.Sprintf("context %T", r.Context())
			return
		}
		hc, _ := ri.Context.(*h1ctx)
		if hc == nil || !sharesH1req(ri, hc) {
			got <- "not the reqInfo allocated with the request"
			return
		}
		select {
		case <-ri.Done():
			got <- fmt.Sprintf("%v %s", ri.Err(), ri.requestID)
		case <-time.After(15 * time.Second):
			got <- "not canceled"
		}
	})
	addr := serveEntry(t, h, false)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone\r\n\r\n")
	// The watcher starts once the request has run h1sWatchDelay; the
	// close is seen whenever it does.
	c.Close()
	select {
	case s := <-got:
		if s != "context canceled gone" {
			t.Fatalf("handler saw %q, want its reqInfo canceled", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("handler did not return")
	}
}
