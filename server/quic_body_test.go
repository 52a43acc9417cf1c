package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestHTTP3RequestBodies: quic-go's server gives a GET without a body
// ContentLength -1; the backend must still see a plain GET (no chunked
// empty body), while a GET or POST with a body keeps it.
func TestHTTP3RequestBodies(t *testing.T) {
	type seen struct {
		te   []string
		cl   int64
		body string
	}
	got := make(chan seen, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.TransferEncoding, r.ContentLength, string(b)}
	}))
	defer be.Close()
	certFile, keyFile, pool := writeCert(t)
	cfg := parse(t, fmt.Sprintf(`
tls {
  certificate "t" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "web" {
  address = "127.0.0.1:0"
  http3   = true
}
http_route "all" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`, certFile, keyFile, be.Listener.Addr().String()))
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "t.test"}}
	defer h3.Close()
	url := "https://" + s.Addr("web").String() + "/"
	tests := []struct {
		method, body string
		want         seen
	}{
		{http.MethodGet, "", seen{nil, 0, ""}},
		{http.MethodGet, "abc", seen{[]string{"chunked"}, -1, "abc"}},
		{http.MethodPost, "xyz", seen{[]string{"chunked"}, -1, "xyz"}},
	}
	for _, tc := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var body io.Reader
		if tc.body != "" {
			body = io.NopCloser(strings.NewReader(tc.body)) // no Content-Length
		}
		req, _ := http.NewRequestWithContext(ctx, tc.method, url, body)
		resp, err := h3.RoundTrip(req)
		if err != nil {
			cancel()
			t.Fatalf("%s %q: %v", tc.method, tc.body, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %q: status %d", tc.method, tc.body, resp.StatusCode)
		}
		select {
		case s := <-got:
			if fmt.Sprint(s) != fmt.Sprint(tc.want) {
				t.Fatalf("%s %q: backend saw %+v, want %+v", tc.method, tc.body, s, tc.want)
			}
		default:
			t.Fatalf("%s %q: backend saw nothing", tc.method, tc.body)
		}
	}
}
