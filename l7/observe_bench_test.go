package l7

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// nopWriter is a ResponseWriter that costs nothing, so the handler
// benchmarks measure the entry handler and the observer alone.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

type discardSink struct{}

func (discardSink) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkObserver is the per-request cost of the Observer around an
// entrypoint handler whose route answers at once: off (the Entry alone),
// metrics, access log, both. The difference to "off" is the observer's cost.
func BenchmarkObserver(b *testing.B) {
	route := &config.HTTPRoute{Name: "r", PathPrefix: "/", Service: "s"}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	router, err := NewRouter([]*Route{{Config: route, Handler: ok}})
	if err != nil {
		b.Fatal(err)
	}
	entry := NewEntry("web", router, nil, nil)
	routes := []*config.HTTPRoute{route}
	run := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest("GET", "/x", nil)
		w := &nopWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	}
	log := func(b *testing.B) *accesslog.Writer {
		w := accesslog.New(discardSink{}, accesslog.Options{Queue: 1 << 16})
		b.Cleanup(func() { w.CloseWithin(10 * time.Second) })
		return w
	}
	b.Run("off", func(b *testing.B) { run(b, entry) })
	b.Run("metrics", func(b *testing.B) {
		run(b, NewObserver(entry, "web", routes, NewMetrics(prometheus.NewRegistry()), nil))
	})
	b.Run("accesslog", func(b *testing.B) { run(b, NewObserver(entry, "web", routes, nil, accesslog.NewSwitch(log(b)))) })
	b.Run("metrics+accesslog", func(b *testing.B) {
		run(b, NewObserver(entry, "web", routes, NewMetrics(prometheus.NewRegistry()), accesslog.NewSwitch(log(b))))
	})
}

// BenchmarkProxyRequestObserved is BenchmarkProxyRequest's proxied request
// (client -> entry -> Proxy -> backend over loopback) without and with the
// observer: the relative cost on a real proxied request.
func BenchmarkProxyRequestObserved(b *testing.B) {
	px, _ := helloProxy(b)
	route := &config.HTTPRoute{Name: "r", Hosts: []string{"bench.test"}, PathPrefix: "/", Service: "svc"}
	router, err := NewRouter([]*Route{{Config: route, Handler: px}})
	if err != nil {
		b.Fatal(err)
	}
	entry := NewEntry("web", router, nil, nil)
	run := func(b *testing.B, h http.Handler) {
		front := httptest.NewServer(h)
		defer front.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: 4}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		req, _ := http.NewRequest("GET", front.URL+"/x", nil)
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
	b.Run("off", func(b *testing.B) { run(b, entry) })
	b.Run("metrics+accesslog", func(b *testing.B) {
		log := accesslog.New(discardSink{}, accesslog.Options{Queue: 1 << 16})
		defer log.CloseWithin(10 * time.Second)
		run(b, NewObserver(entry, "web", []*config.HTTPRoute{route}, NewMetrics(prometheus.NewRegistry()), accesslog.NewSwitch(log)))
	})
}
