package l7

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

// BenchmarkProxyRequest sends keep-alive GETs for a small body, directly to
// a backend and through an entrypoint handler and Proxy. Bytes and allocs
// per op include the client's and the backend's (same process): the
// proxy's own cost is the difference between the two sub-benchmarks.
func BenchmarkProxyRequest(b *testing.B) {
	px, backend := helloProxy(b)
	router, err := NewRouter([]*Route{{Config: &config.HTTPRoute{Name: "r", Hosts: []string{"bench.test"}, PathPrefix: "/", Service: "svc"}, Handler: px}})
	if err != nil {
		b.Fatal(err)
	}
	front := serveFront(b, NewEntry("web", router, nil, nil))

	run := func(b *testing.B, url string) {
		tr := &http.Transport{MaxIdleConnsPerHost: 4}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = "bench.test"
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, backend+"/x") })
	b.Run("proxy", func(b *testing.B) { run(b, front+"/x") })
}

// serveFront serves h with the entrypoint server (NewServer) on a loopback
// port until the benchmark ends, and returns its base URL.
func serveFront(tb testing.TB, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(ServerOptions{Entrypoint: "web", Handler: h})
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// helloBody is helloProxy's backend's answer.
const helloBody = "hello, world\n"

// helloProxy is a Proxy to a local backend answering helloBody, and the
// backend's URL; both are closed when the benchmark ends.
func helloProxy(b *testing.B) (*Proxy, string) {
	b.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, helloBody) }))
	b.Cleanup(be.Close)
	svc := svcFor("http://" + be.Listener.Addr().String())
	pool, err := upstream.NewPool(svc, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	px := NewProxy(svc, pool, nil)
	b.Cleanup(px.CloseIdleConnections)
	return px, be.URL
}
