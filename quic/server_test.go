package quic

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"
)

// The package's TestMain (if any) belongs to the parser's files; these
// tests check for leaks themselves.

// testCert is a self-signed certificate for "t.test" and its pool.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "t.test"},
		DNSNames:     []string{"t.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// countingConn counts the Retry packets the server sends.
type countingConn struct {
	net.PacketConn
	retries atomic.Int64
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	// A QUIC v1 long header with type 3 is a Retry (RFC 9000 §17.2.5).
	if len(b) > 0 && b[0]&0x80 != 0 && b[0]&0x30 == 0x30 {
		c.retries.Add(1)
	}
	return c.PacketConn.WriteTo(b, addr)
}

type testServer struct {
	srv  *Server
	pc   *countingConn
	addr string
	pool *x509.CertPool
	done chan error
}

func startServer(t testing.TB, o ServerOptions) *testServer {
	t.Helper()
	cert, pool := testCert(t)
	o.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: NewServer(o), pc: &countingConn{PacketConn: udp}, addr: udp.LocalAddr().String(), pool: pool, done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(ts.pc) }()
	t.Cleanup(func() {
		ts.srv.Close()
		if err := <-ts.done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		udp.Close()
	})
	return ts
}

func (ts *testServer) client() *http3.Transport {
	return &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.pool, ServerName: "t.test"}}
}

func get(t *testing.T, tr *http3.Transport, url string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(body)
}

func TestServeRequest(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startServer(t, ServerOptions{Entrypoint: "web", RetryThreshold: 1000, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto+" "+r.RemoteAddr)
	})})
	tr := ts.client()
	defer tr.Close()
	resp, body := get(t, tr, "https://"+ts.addr+"/")
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 3 {
		t.Fatalf("got %d %s", resp.StatusCode, resp.Proto)
	}
	// The handler sees the QUIC peer's address as RemoteAddr: l7 derives
	// the client IP from it.
	if want := "HTTP/3.0 127.0.0.1:"; len(body) <= len(want) || body[:len(want)] != want {
		t.Fatalf("body %q, want %q followed by the client's port", body, want)
	}
	if n := ts.pc.retries.Load(); n != 0 {
		t.Fatalf("%d Retry packets below the threshold", n)
	}
	waitFor(t, func() bool { return ts.srv.HandshakesInProgress() == 0 }, "handshake count back to 0")
}

func TestRetryAboveThreshold(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startServer(t, ServerOptions{Entrypoint: "web", RetryThreshold: 0, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})})
	tr := ts.client()
	defer tr.Close()
	if _, body := get(t, tr, "https://"+ts.addr+"/"); body != "ok" {
		t.Fatalf("body %q", body)
	}
	// At least one: a client whose Initial is retransmitted before the
	// Retry arrives (a loaded machine) gets one Retry per Initial.
	if n := ts.pc.retries.Load(); n < 1 {
		t.Fatalf("%d Retry packets, want at least 1 (threshold 0 validates every client)", n)
	}
}

func TestHandshakeCountOnFailure(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startServer(t, ServerOptions{Entrypoint: "web", RetryThreshold: 1000, HandshakeTimeout: time.Second, Handler: http.NotFoundHandler()})
	// A client that does not trust the certificate aborts the handshake;
	// the count must not keep it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := quicgo.DialAddr(ctx, ts.addr, &tls.Config{ServerName: "t.test", NextProtos: []string{"h3"}}, nil)
	if err == nil {
		t.Fatal("handshake with an untrusted certificate succeeded")
	}
	waitFor(t, func() bool { return ts.srv.HandshakesInProgress() == 0 }, "failed handshake no longer counted")
}

func TestShutdownLetsRequestsFinish(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	started, release := make(chan struct{}), make(chan struct{})
	ts := startServer(t, ServerOptions{Entrypoint: "web", RetryThreshold: 1000, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})})
	tr := ts.client()
	defer tr.Close()
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "https://"+ts.addr+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{string(b), err}
	}()
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- ts.srv.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-res; r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownGraceExpires(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	started := make(chan struct{})
	ts := startServer(t, ServerOptions{Entrypoint: "web", RetryThreshold: 1000, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // a stuck request: only closing ends it
	})})
	tr := ts.client()
	defer tr.Close()
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "https://"+ts.addr+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	if err := <-errc; err == nil {
		t.Fatal("the stuck request completed after its connection was closed")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
