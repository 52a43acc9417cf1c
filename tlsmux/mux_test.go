package tlsmux

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pool(t testing.TB, addr string) *upstream.Pool {
	p, err := upstream.NewPool(&config.Service{Name: "svc", ConnectTimeout: 5 * time.Second, FailTimeout: time.Second,
		Backends: []config.Backend{{Address: addr, Weight: 1}}}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func proxyTo(t testing.TB, addr string) l4.Handler {
	return &l4.Proxy{Pool: pool(t, addr), Idle: time.Minute}
}

// serve runs handle on every connection accepted on a loopback listener.
func serve(t testing.TB, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echoTagged answers each line with tag + line, so a test knows which
// backend it reached.
func echoTagged(tag string) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(append([]byte(tag), buf[:n]...)); err != nil {
				return
			}
		}
	}
}

// tlsBackend is a crypto/tls server with its own certificate for name.
func tlsBackend(t testing.TB, ca *testCA, name, tag string) string {
	c, k := ca.issue(t, t.TempDir(), "ecdsa", name)
	cfg := &tls.Config{Certificates: []tls.Certificate{serverCert(t, c, k)}, NextProtos: []string{"h2", "x-custom"}}
	return serve(t, tls.NewListener(listen(t), cfg), echoTagged(tag))
}

// startMux serves a Mux on a loopback TCP entrypoint.
func startMux(t testing.TB, o Options) (string, *Mux) {
	t.Helper()
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s := &l4.TCPServer{Entrypoint: "e", Handler: m}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String(), m
}

// fixture is an entrypoint with the routes most tests use:
// a.test passthrough to a TLS backend with its own CA, b.test and
// *.wild.test terminated by proxynow toward a plaintext echo, x-custom ALPN
// passthrough, and a plain catch-all.
type fixture struct {
	addr       string
	mux        *Mux
	backendCA  *testCA
	proxyCA    *testCA
	certFile   string
	keyFile    string
	certSource CertSource
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{backendCA: newCA(t), proxyCA: newCA(t)}
	dir := t.TempDir()
	f.certFile, f.keyFile = f.proxyCA.issue(t, dir, "ecdsa", "b.test", "*.wild.test")
	certs, err := NewCertStore([]CertSource{{Name: "b", CertFile: f.certFile, KeyFile: f.keyFile}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := serve(t, listen(t), echoTagged("plain:"))
	f.addr, f.mux = startMux(t, Options{
		Entrypoint:       "e",
		Certs:            certs,
		HandshakeTimeout: 10 * time.Second, // generous: 60 handshakes at once under -race on 2 cores
		Routes: []Route{
			{Name: "a", SNI: []string{"a.test"}, Mode: Passthrough, Handler: proxyTo(t, tlsBackend(t, f.backendCA, "a.test", "a:"))},
			{Name: "a-custom", SNI: []string{"a.test"}, ALPN: []string{"x-custom"}, Mode: Passthrough,
				Handler: proxyTo(t, tlsBackend(t, f.backendCA, "a.test", "a-custom:"))},
			{Name: "b", SNI: []string{"b.test", "*.wild.test"}, Mode: Terminate, Handler: proxyTo(t, serve(t, listen(t), echoTagged("b:")))},
			{Name: "plain", Mode: Plain, Handler: proxyTo(t, plain)},
		},
	})
	return f
}

func roundTrip(t testing.TB, c net.Conn, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n])
}

func dialTLS(t testing.TB, addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func TestRouting(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name     string
		sni      string
		alpn     []string
		roots    *x509.CertPool
		want     string // reply prefix
		wantALPN string
	}{
		{name: "passthrough shows the backend's certificate", sni: "a.test", roots: f.backendCA.pool, want: "a:"},
		{name: "passthrough SNI is case-insensitive", sni: "A.TEST", roots: f.backendCA.pool, want: "a:"},
		{name: "alpn route wins when offered", sni: "a.test", alpn: []string{"x-custom"}, roots: f.backendCA.pool, want: "a-custom:", wantALPN: "x-custom"},
		{name: "alpn route skipped when not offered", sni: "a.test", alpn: []string{"h2"}, roots: f.backendCA.pool, want: "a:", wantALPN: "h2"},
		{name: "terminate exact", sni: "b.test", roots: f.proxyCA.pool, want: "b:"},
		{name: "terminate wildcard", sni: "x.wild.test", roots: f.proxyCA.pool, want: "b:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dialTLS(t, f.addr, &tls.Config{ServerName: tt.sni, RootCAs: tt.roots, NextProtos: tt.alpn})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if got := roundTrip(t, c, "hi"); got != tt.want+"hi" {
				t.Fatalf("got %q, want %q", got, tt.want+"hi")
			}
			if got := c.ConnectionState().NegotiatedProtocol; got != tt.wantALPN {
				t.Fatalf("ALPN %q, want %q", got, tt.wantALPN)
			}
		})
	}
	t.Run("plain bytes go to the plain route", func(t *testing.T) {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := roundTrip(t, c, "GET / HTTP/1.0\r\n\r\n"); !strings.HasPrefix(got, "plain:GET") {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("unknown SNI is refused even with a plain route", func(t *testing.T) {
		_, err := dialTLS(t, f.addr, &tls.Config{ServerName: "zzz.test", InsecureSkipVerify: true})
		if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
			t.Fatalf("handshake error = %v, want an unrecognized_name alert", err)
		}
	})
}

func TestUnknownSNIAlert(t *testing.T) {
	ca := newCA(t)
	addr, m := startMux(t, Options{Routes: []Route{
		{Name: "a", SNI: []string{"a.test"}, Mode: Passthrough, Handler: proxyTo(t, tlsBackend(t, ca, "a.test", "a:"))},
	}})
	_, err := dialTLS(t, addr, &tls.Config{ServerName: "other.test", RootCAs: ca.pool})
	if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Fatalf("handshake error = %v, want an unrecognized_name alert", err)
	}
	if m.Stats().NoRoute.Load() != 1 {
		t.Fatalf("NoRoute = %d", m.Stats().NoRoute.Load())
	}
}

func TestTLSOffloadBulk(t *testing.T) {
	f := newFixture(t)
	echo := serve(t, listen(t), func(c net.Conn) { io.Copy(c, c); c.(*net.TCPConn).CloseWrite() })
	certs, _ := NewCertStore([]CertSource{{Name: "b", CertFile: f.certFile, KeyFile: f.keyFile}}, nil)
	addr, _ := startMux(t, Options{Certs: certs, Routes: []Route{{Name: "t", Mode: Terminate, Handler: proxyTo(t, echo)}}})
	tc, err := dialTLS(t, addr, &tls.Config{ServerName: "b.test", RootCAs: f.proxyCA.pool})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() {
		tc.Write(data)
		tc.CloseWrite() // close_notify reaches the backend as EOF
	}()
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(tc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("got %d bytes back, want %d identical", len(got), len(data))
	}
}

func TestMixedConcurrentClients(t *testing.T) {
	f := newFixture(t)
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			sni, roots, want := "a.test", f.backendCA.pool, "a:"
			if i%2 == 1 {
				sni, roots, want = "b.test", f.proxyCA.pool, "b:"
			}
			c, err := dialTLS(t, f.addr, &tls.Config{ServerName: sni, RootCAs: roots})
			if err != nil {
				errs <- fmt.Errorf("client %d (%s): %v", i, sni, err)
				return
			}
			msg := fmt.Sprintf("m%d", i)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte(msg))
			buf := make([]byte, 64)
			k, err := c.Read(buf)
			if err != nil || string(buf[:k]) != want+msg {
				errs <- fmt.Errorf("client %d (%s): got %q, %v", i, sni, buf[:k], err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCertificateReplacedOnDisk(t *testing.T) {
	f := newFixture(t)
	certs, err := NewCertStore([]CertSource{{Name: "b", CertFile: f.certFile, KeyFile: f.keyFile}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	certs.Watch(20 * time.Millisecond)
	defer certs.Close()
	echo := serve(t, listen(t), echoTagged(""))
	addr, _ := startMux(t, Options{Certs: certs, Routes: []Route{{Name: "t", Mode: Terminate, Handler: proxyTo(t, echo)}}})
	serialOf := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].SerialNumber.String() }

	open, err := dialTLS(t, addr, &tls.Config{ServerName: "b.test", RootCAs: f.proxyCA.pool})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, open, "x")
	before := serialOf(open)

	c2, k2 := f.proxyCA.issue(t, t.TempDir(), "ecdsa", "b.test")
	for _, p := range [][2]string{{k2, f.keyFile}, {c2, f.certFile}} {
		data, _ := readFile(p[0])
		writeFile(t, p[1], data)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := dialTLS(t, addr, &tls.Config{ServerName: "b.test", RootCAs: f.proxyCA.pool})
		if err == nil && serialOf(c) != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new certificate not served within 5s (err %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := roundTrip(t, open, "still"); got != "still" {
		t.Fatalf("open connection broken by the reload: %q", got)
	}
}

func TestBadInput(t *testing.T) {
	ca := newCA(t)
	addr, m := startMux(t, Options{HandshakeTimeout: 300 * time.Millisecond, Routes: []Route{
		{Name: "a", SNI: []string{"a.test"}, Mode: Passthrough, Handler: proxyTo(t, tlsBackend(t, ca, "a.test", "a:"))},
	}})
	hello := captureHello(t, "a.test")
	big := append([]byte{22, 3, 1, 0xff, 0xff}, bytes.Repeat([]byte{1}, 70000)...)
	tests := []struct {
		name    string
		send    func(net.Conn)
		minWait time.Duration // the close must not come before this
	}{
		{name: "garbage", send: func(c net.Conn) { c.Write([]byte("\x16\x03\x01\x00\x05hello")) }},
		{name: "not TLS and no plain route", send: func(c net.Conn) { c.Write([]byte("GET / HTTP/1.1\r\n\r\n")) }},
		{name: "SSLv2 hello", send: func(c net.Conn) { c.Write([]byte{0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15}) }},
		{name: "oversized record", send: func(c net.Conn) { c.Write(big) }},
		{name: "truncated hello", send: func(c net.Conn) { c.Write(hello[:len(hello)/2]) }, minWait: 250 * time.Millisecond},
		{name: "sends nothing", send: func(net.Conn) {}, minWait: 250 * time.Millisecond},
		{name: "trickles a byte at a time", minWait: 250 * time.Millisecond, send: func(c net.Conn) {
			for i := 0; i < 20 && i < len(hello); i++ {
				if _, err := c.Write(hello[i : i+1]); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := m.Stats().BadHello.Load()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			tt.send(c)
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection not closed within the handshake timeout")
			}
			if n != 0 {
				t.Fatalf("got %d bytes back", n)
			}
			if d := time.Since(start); d < tt.minWait {
				t.Fatalf("closed after %v, before the handshake timeout", d)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("closed after %v", d)
			}
			waitCount(t, &m.Stats().BadHello, before+1)
		})
	}
}

func waitCount(t *testing.T, c interface{ Load() uint64 }, want uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for c.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("counter = %d, want %d", c.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// captureHello returns the bytes a Go TLS client sends first.
func captureHello(t testing.TB, sni string) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		tls.Client(client, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
		client.Close()
	}()
	buf := make([]byte, 64<<10)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out []byte
	for {
		n, err := server.Read(buf)
		out = append(out, buf[:n]...)
		var h ClientHello
		if _, perr := ParseRecords(out, nil, &h); perr == nil || err != nil {
			return out
		}
	}
}

func TestServerFirstClientReachesPlainRoute(t *testing.T) {
	banner := serve(t, listen(t), func(c net.Conn) { c.Write([]byte("220 ready\r\n")) })
	addr, _ := startMux(t, Options{HandshakeTimeout: 100 * time.Millisecond, Routes: []Route{
		{Name: "plain", Mode: Plain, Handler: proxyTo(t, banner)},
	}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 32)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "220 ready\r\n" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

func TestNewRejectsAmbiguousPlain(t *testing.T) {
	_, err := New(Options{Routes: []Route{{Name: "x", Mode: Plain}, {Name: "y", Mode: Plain}}})
	if err == nil {
		t.Fatal("two plain routes accepted")
	}
	if _, err := New(Options{Routes: []Route{{Name: "t", Mode: Terminate}}}); err == nil {
		t.Fatal("terminate without certificates accepted")
	}
}
