package l7

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkProxyHTTP3GET proxies a GET shaped as quic-go's HTTP/3 server
// hands it over (a body, ContentLength -1) to an HTTP/1.1 backend: as is
// ("unsettled": net/http's Transport, which probes the body) and through
// the HTTP3 entry ("settled": the body is found empty first, so
// h1Transport's fast path serves it). Figures include the backend's.
func BenchmarkProxyHTTP3GET(b *testing.B) {
	px, _ := helloProxy(b)
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest(http.MethodGet, "https://bench.test/x", nil)
			r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/3.0", 3, 0
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("")), -1
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK || w.Body.Len() != len(helloBody) {
				b.Fatalf("got %d %q", w.Code, w.Body.String())
			}
		}
	}
	b.Run("unsettled", func(b *testing.B) { run(b, px) })
	b.Run("settled", func(b *testing.B) { run(b, HTTP3(px, 10*time.Second)) })
}
