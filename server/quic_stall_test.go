package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/proxynow/proxynow/l7"
)

// An HTTP/3 client that keeps its connection alive but gives a response's
// stream no flow-control credit (it never reads the body) must not hold
// the request and its backend connection for ever: the write waits at
// most timeouts.idle, then the request ends and the backend connection
// with it.
func TestHTTP3StalledStreamEnds(t *testing.T) {
	backendErr := make(chan error, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		var err error
		for i := 0; i < 4096 && err == nil; i++ { // at most 256 MiB
			_, err = w.Write(chunk)
		}
		backendErr <- err
	}))
	t.Cleanup(be.Close) // after the proxy's (cleanups run last first)
	s, pool := startH3Proxy(t, be.Listener.Addr().String(), "500ms")
	h3 := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "t.test"},
		// Alive (the idle timeout does not end the connection), with
		// small stream windows that a body nobody reads soon fills.
		QUICConfig: &quicgo.Config{KeepAlivePeriod: 50 * time.Millisecond, InitialStreamReceiveWindow: 64 << 10, MaxStreamReceiveWindow: 64 << 10},
	}
	defer h3.Close()
	resp, err := h3.RoundTrip(mustRequest(t, "https://"+s.Addr("web").String()+"/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The body is never read.
	select {
	case err := <-backendErr:
		if err == nil {
			t.Fatal("the backend wrote 256 MiB through a stream nobody reads")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the backend still writing 20 s after the client stopped giving credit (idle timeout 500 ms)")
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// A response that pauses longer than timeouts.idle and then ends with
// trailers (a gRPC stream's grpc-status) keeps them: the stall deadline
// set by the last write must not fail the trailers' write after the pause.
func TestHTTP3PausedStreamKeepsTrailers(t *testing.T) {
	const idle = 300 * time.Millisecond
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Status")
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("first\n"))
		w.(http.Flusher).Flush()
		time.Sleep(4 * idle)
		w.Header().Set("X-Status", "done")
	}))
	t.Cleanup(be.Close) // after the proxy's (cleanups run last first)
	s, pool := startH3Proxy(t, be.Listener.Addr().String(), "300ms")
	h3 := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "t.test"},
		QUICConfig:      &quicgo.Config{KeepAlivePeriod: 50 * time.Millisecond},
	}
	defer h3.Close()
	resp, err := h3.RoundTrip(mustRequest(t, "https://"+s.Addr("web").String()+"/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "first\n" || resp.Trailer.Get("X-Status") != "done" {
		t.Fatalf("body %q, %v, trailers %v; want \"first\\n\" and X-Status: done", b, err, resp.Trailer)
	}
}

// A client that reads an HTTP/3 response slowly but steadily keeps it
// even when the handler writes it in one Write that takes longer than
// timeouts.idle: only a wait without progress counts.
func TestHTTP3SlowReaderOneBigWriteKept(t *testing.T) {
	const idle = 300 * time.Millisecond
	const size = 2 << 20
	certFile, keyFile, pool := writeCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	srv := &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
		Handler: l7.WriteStallHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(make([]byte, size))
		}), idle),
	}
	go srv.Serve(pc)
	defer srv.Close()
	h3 := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "t.test"},
		QUICConfig:      &quicgo.Config{KeepAlivePeriod: 50 * time.Millisecond, InitialStreamReceiveWindow: 64 << 10, MaxStreamReceiveWindow: 64 << 10},
	}
	defer h3.Close()
	resp, err := h3.RoundTrip(mustRequest(t, "https://"+pc.LocalAddr().String()+"/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	var got int
	for {
		time.Sleep(idle / 6) // ~64 KiB per 50 ms
		n, err := io.ReadFull(resp.Body, buf)
		got += n
		if err != nil {
			break
		}
	}
	if got != size {
		t.Fatalf("slow reader got %d of %d bytes", got, size)
	}
}

// startH3Proxy runs proxynow with an HTTP/3 entrypoint whose timeouts.idle
// is idle, proxying every request to the HTTP backend at addr.
func startH3Proxy(t *testing.T, addr, idle string) (*Server, *x509.CertPool) {
	t.Helper()
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
  timeouts {
    idle = %q
  }
}
http_route "all" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`, certFile, keyFile, idle, addr))
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, pool
}
