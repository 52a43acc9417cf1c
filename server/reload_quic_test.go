package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestReloadHTTP3: a reload keeps the HTTP/3 socket and server; the next
// request on the open QUIC connection gets the new routes, and Alt-Svc is
// still advertised on the TCP side.
func TestReloadHTTP3(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	src := func(body string) string {
		return fmt.Sprintf(`
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
  service     = "hello"
}
service "hello" {
  respond { body = %q }
}
`, certFile, keyFile, body)
	}
	s, err := New(parse(t, src("hello")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr("web").String()
	q := s.listenerOf("web").quic
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "t.test"}
	h3 := &http3.Transport{TLSClientConfig: tlsConf}
	defer h3.Close()
	client := &http.Client{Transport: h3, Timeout: 20 * time.Second}
	get := func() string {
		t.Helper()
		resp, err := client.Get("https://" + addr + "/")
		if err != nil {
			t.Fatalf("HTTP/3 GET: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if b := get(); b != "hello" {
		t.Fatalf("before: %q", b)
	}
	if _, err := s.Reload(parse(t, src("reloaded"))); err != nil {
		t.Fatal(err)
	}
	if s.listenerOf("web").quic != q {
		t.Fatal("HTTP/3 side rebuilt by a reload that did not change it")
	}
	if b := get(); b != "reloaded" {
		t.Fatalf("after the reload, on the open QUIC connection: %q", b)
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Alt-Svc") == "" {
		t.Fatal("no Alt-Svc after the reload")
	}
}
