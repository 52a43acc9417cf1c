//go:build linux

package integration

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// h3Backend is a quic-go HTTP/3 server with its own certificate.
type h3Backend struct {
	addr  string
	srv   *http3.Server
	count atomic.Int64
}

func startH3Backend(t testing.TB, cert *leafCert, h http.HandlerFunc) *h3Backend {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &h3Backend{addr: pc.LocalAddr().String()}
	b.srv = &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert.tlsCert(t)}}),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.count.Add(1)
			h(w, r)
		}),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.srv.Serve(pc); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("h3 backend: %v", err)
		}
	}()
	t.Cleanup(func() {
		b.srv.Close()
		pc.Close()
		<-done
	})
	return b
}

// TestHTTP3Backend: an h3:// backend is reached over HTTP/3, verified
// with the service's tls block, health-checked over QUIC, and answers
// requests with bodies from HTTP/1.1 clients.
func TestHTTP3Backend(t *testing.T) {
	ca := newTestCA(t, "backend")
	leaf := ca.issue(t, t.TempDir(), "b", "b.test")
	be := startH3Backend(t, leaf, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend-Proto", r.Proto)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
	})
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "app" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "h3://%s" {}
  tls {
    server_name = "b.test"
    ca_file     = %q
  }
  health_check {
    path     = "/healthz"
    interval = "1s"
    timeout  = "900ms"
  }
}
`, be.addr, ca.file))
	c := newH1Client(t)
	base := "http://" + p.addr("web")
	r := mustDo(t, c, base, reqSpec{path: "/x"})
	if r.status != 200 || r.body != "GET /x " || r.header.Get("X-Backend-Proto") != "HTTP/3.0" {
		t.Fatalf("GET: %d %q backend proto %q", r.status, r.body, r.header.Get("X-Backend-Proto"))
	}
	big := strings.Repeat("z", 200<<10)
	r = mustDo(t, c, base, reqSpec{method: "POST", path: "/up", body: big})
	if r.status != 200 || r.body != "POST /up "+big {
		t.Fatalf("POST: %d, %d bytes back", r.status, len(r.body))
	}
	// The health checks reach the backend over QUIC too.
	deadline := time.Now().Add(ioTimeout)
	for be.count.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests reached the backend: health checks are not probing it", be.count.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHTTP3BackendBadCertificate: a backend whose certificate does not
// verify gets no request; the client gets 502.
func TestHTTP3BackendBadCertificate(t *testing.T) {
	ca := newTestCA(t, "backend")
	other := newTestCA(t, "other")
	leaf := other.issue(t, t.TempDir(), "b", "b.test")
	be := startH3Backend(t, leaf, func(w http.ResponseWriter, r *http.Request) {})
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "app" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "h3://%s" {}
  tls {
    server_name = "b.test"
    ca_file     = %q
  }
}
`, be.addr, ca.file))
	r := mustDo(t, newH1Client(t), "http://"+p.addr("web"), reqSpec{})
	if r.status != http.StatusBadGateway || be.count.Load() != 0 {
		t.Fatalf("got %d, backend reached %d times", r.status, be.count.Load())
	}
}
