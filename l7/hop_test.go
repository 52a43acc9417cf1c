package l7

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

// TestCopyEndToEnd: every hop-by-hop field and every field the response's
// Connection names stay out of dst; the rest is copied, appended to what dst
// already has.
func TestCopyEndToEnd(t *testing.T) {
	src := http.Header{
		"Connection":          {"X-Secret, , x-other"},
		"Proxy-Connection":    {"keep-alive"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authenticate":  {"Basic"},
		"Proxy-Authorization": {"x"},
		"Te":                  {"trailers"},
		"Trailer":             {"X-T"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"websocket"},
		"X-Secret":            {"s"},
		"X-Other":             {"o"},
		"Content-Type":        {"text/plain"},
		"Set-Cookie":          {"b=2"},
		"connection":          {"not canonical: kept, as net/http keeps it"},
	}
	dst := http.Header{"X-Request-Id": {"id"}, "Set-Cookie": {"a=1"}}
	copyEndToEnd(dst, src)
	want := http.Header{
		"X-Request-Id": {"id"},
		"Set-Cookie":   {"a=1", "b=2"},
		"Content-Type": {"text/plain"},
		"connection":   {"not canonical: kept, as net/http keeps it"},
	}
	if !reflect.DeepEqual(dst, want) {
		t.Fatalf("dst = %v\nwant %v", dst, want)
	}
	for _, k := range []string{"Connection", "Keep-Alive", "Upgrade", "Transfer-Encoding", "Te", "Trailer",
		"Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization"} {
		if !isHopHeader(k) {
			t.Errorf("isHopHeader(%q) = false", k)
		}
	}
	if isHopHeader("Content-Type") || isHopHeader("keep-alive") {
		t.Error("isHopHeader takes an end-to-end or non-canonical name")
	}
}

// TestProxyResponseHopByHop: a backend's hop-by-hop response fields, and
// those its Connection names, do not reach the client; its other fields
// do, next to the proxy's own X-Request-Id.
func TestProxyResponseHopByHop(t *testing.T) {
	addr, _ := headRecorder(t, func(string) string {
		return "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authenticate: Basic\r\nUpgrade: h2c\r\nTe: trailers\r\nX-Keep: k\r\nContent-Length: 2\r\n\r\nok"
	})
	svc := svcFor("http://" + addr)
	px, _ := newTestProxy(t, svc)
	router := routeAll(t, &Route{Config: &config.HTTPRoute{Name: "r", Service: svc.Name}, Handler: px})
	ts := httptest.NewServer(NewEntry("web", router, nil, nil))
	defer ts.Close()
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	for i := range 2 { // the second over the pooled backend connection
		resp, err := c.Get(ts.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Te"} {
			if v, ok := resp.Header[k]; ok {
				t.Errorf("request %d: %s: %q reached the client", i, k, v)
			}
		}
		if resp.Header.Get("X-Keep") != "k" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("request %d: end-to-end fields lost: %v", i, resp.Header)
		}
	}
}
