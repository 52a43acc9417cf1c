package quic

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkServeHTTP3 is one HTTP/3 GET with a 13-byte answer over a kept
// QUIC connection on loopback: quic-go's client and this server, both in
// the process, so the figure is the pair's cost per request.
func BenchmarkServeHTTP3(b *testing.B) {
	body := []byte("hello, world\n")
	ts := startServer(b, ServerOptions{Entrypoint: "bench", RetryThreshold: 1000, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	})})
	tr := ts.client()
	defer tr.Close()
	url := "https://" + ts.addr + "/"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}
