package l4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

func TestProxyBulkBothWays(t *testing.T) {
	be := backend(t, echo)
	addr := startTCP(t, &TCPServer{Entrypoint: "e", Handler: &Proxy{Pool: pool(t, be), Idle: time.Minute}})
	c := dial(t, addr)
	data := make([]byte, 8<<20)
	rand.Read(data)
	var wg sync.WaitGroup
	wg.Add(1)
	var werr error
	go func() {
		defer wg.Done()
		if _, werr = c.Write(data); werr == nil {
			werr = c.CloseWrite()
		}
	}()
	got, err := io.ReadAll(c)
	wg.Wait()
	if err != nil || werr != nil {
		t.Fatalf("read: %v, write: %v", err, werr)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("echoed %d bytes differ from the %d sent", len(got), len(data))
	}
}

func TestProxyHalfClose(t *testing.T) {
	// The backend reads to EOF, then answers with what it counted: that
	// only works if the client's FIN reaches it while the other direction
	// stays open.
	be := backend(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		time.Sleep(20 * time.Millisecond)
		c.Write([]byte{byte(n)})
	})
	addr := startTCP(t, &TCPServer{Handler: &Proxy{Pool: pool(t, be), Idle: time.Minute}})
	c := dial(t, addr)
	c.Write([]byte("hello"))
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, []byte{5}) {
		t.Fatalf("got %v, %v; want [5] then EOF", got, err)
	}
}

func TestProxyIdleTimeout(t *testing.T) {
	// Gaps of a tenth of the timeout: a loaded -race run has stalled the
	// test for more than 100 ms, which a 200 ms timeout with 80 ms gaps
	// did not survive.
	const idle = time.Second
	be := backend(t, echo)
	addr := startTCP(t, &TCPServer{Handler: &Proxy{Pool: pool(t, be), Idle: idle}})
	c := dial(t, addr)
	// Traffic keeps the pair alive past the timeout.
	start := time.Now()
	var lastIO time.Time
	for range 12 {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("active connection closed: %v", err)
		}
		lastIO = time.Now()
		time.Sleep(idle / 10)
	}
	if d := lastIO.Sub(start); d <= idle {
		t.Fatalf("the active phase took %v, not past the %v timeout", d, idle)
	}
	expectClosed(t, c, 5*idle)
	if d := time.Since(lastIO); d < idle {
		t.Fatalf("idle connection closed after %v, before the timeout", d)
	}
}

// TestProxyIdleTimeoutClosesCleanly: an idle pair is closed with a FIN
// toward both peers, not reset: the timeout is no failure, and a client
// reading to the end sees EOF, as after nginx's proxy_timeout.
func TestProxyIdleTimeoutClosesCleanly(t *testing.T) {
	beLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { beLn.Close() })
	beErr := make(chan error, 1)
	go func() {
		c, err := beLn.Accept()
		if err != nil {
			beErr <- err
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		beErr <- err
	}()
	addr := startTCP(t, &TCPServer{Handler: &Proxy{Pool: pool(t, beLn.Addr().String()), Idle: 200 * time.Millisecond}})
	c := dial(t, addr)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client: read after the idle timeout: %v, want EOF", err)
	}
	if err := <-beErr; err != io.EOF {
		t.Errorf("backend: read after the idle timeout: %v, want EOF", err)
	}
}

func TestProxyNoBackendClosesAtOnce(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	addr := startTCP(t, &TCPServer{Handler: &Proxy{Pool: pool(t, dead, dead)}})
	c := dial(t, addr)
	expectClosed(t, c, 100*time.Millisecond)
}

func TestMaxConnections(t *testing.T) {
	be := backend(t, echo)
	s := &TCPServer{Handler: &Proxy{Pool: pool(t, be)}, MaxConnections: 2}
	addr := startTCP(t, s)
	for range 2 {
		c := dial(t, addr)
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// The third is reset at once: on a loaded machine the reset can beat
	// the dialer's own view of the handshake, so a failed dial counts too.
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		expectClosed(t, c, 5*time.Second)
		c.Close()
	}
	eventually(t, "the third connection rejected", func() bool { return s.Rejected() == 1 })
	if s.Rejected() != 1 {
		t.Fatalf("Rejected = %d, want 1", s.Rejected())
	}
}

func header(t *testing.T, version byte, src, dst string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version,
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProxyProtocolIn(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		send    []byte
		client  string // "" means the connection must be refused
		prefix  string
	}{
		{name: "v1 from trusted", trusted: loopback,
			send: append(header(t, 1, "203.0.113.7:4242", "198.51.100.1:443"), "GET"...), client: "203.0.113.7:4242", prefix: "GET"},
		{name: "v2 from trusted", trusted: loopback,
			send: append(header(t, 2, "[2001:db8::1]:5353", "[2001:db8::2]:53"), "abc"...), client: "[2001:db8::1]:5353", prefix: "abc"},
		{name: "v2 local command keeps socket address", trusted: loopback,
			send: append([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), "z"...), client: "127.0.0.1", prefix: "z"},
		{name: "no header from trusted", trusted: loopback, send: []byte("GET / HTTP/1.1\r\n\r\n")},
		{name: "garbage v1 from trusted", trusted: loopback, send: []byte("PROXY TCP4 banana\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got := recorder()
			s := &TCPServer{Handler: h, ProxyProtocol: &ProxyProtocolIn{Trusted: tt.trusted, Timeout: time.Second}}
			c := dial(t, startTCP(t, s))
			c.Write(tt.send)
			if tt.client == "" {
				expectClosed(t, c, 2*time.Second)
				if s.Rejected() != 1 {
					t.Fatalf("Rejected = %d, want 1", s.Rejected())
				}
				return
			}
			var rc *Conn
			select {
			case rc = <-got:
			case <-time.After(2 * time.Second):
				t.Fatal("handler not called")
			}
			if want := tt.client; rc.Client.String() != want && rc.Client.Addr().String() != want {
				t.Fatalf("client = %v, want %v", rc.Client, want)
			}
			if string(rc.Prefix) != tt.prefix {
				t.Fatalf("prefix = %q, want %q", rc.Prefix, tt.prefix)
			}
		})
	}
}

func TestProxyProtocolStallTimesOut(t *testing.T) {
	s := &TCPServer{Handler: HandlerFunc(func(_ context.Context, c *Conn) { c.Close() }),
		ProxyProtocol: &ProxyProtocolIn{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Timeout: 150 * time.Millisecond}}
	c := dial(t, startTCP(t, s))
	start := time.Now()
	expectClosed(t, c, 2*time.Second)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("closed after %v, before the header timeout", d)
	}
}

func TestProxyProtocolUntrusted(t *testing.T) {
	var mu sync.Mutex
	var seen []byte
	be := backend(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		mu.Lock()
		seen = append(seen, b...)
		mu.Unlock()
	})
	s := &TCPServer{Handler: &Proxy{Pool: pool(t, be)},
		ProxyProtocol: &ProxyProtocolIn{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}
	addr := startTCP(t, s)
	t.Run("header refused", func(t *testing.T) {
		c := dial(t, addr)
		// Sent in two pieces: the check must not decide on a partial signature.
		c.Write([]byte("\r\n\r\n\x00"))
		time.Sleep(20 * time.Millisecond)
		c.Write(header(t, 2, "203.0.113.7:1", "198.51.100.1:2")[5:])
		expectClosed(t, c, 2*time.Second)
	})
	t.Run("plain bytes pass", func(t *testing.T) {
		c := dial(t, addr)
		c.Write([]byte("PROX"))
		time.Sleep(20 * time.Millisecond)
		c.Write([]byte("IMA hello"))
		c.CloseWrite()
		io.Copy(io.Discard, c)
	})
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		got := string(seen)
		mu.Unlock()
		if got == "PROXIMA hello" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend saw %q, want only %q", got, "PROXIMA hello")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProxyProtocolOut(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			type result struct {
				h    *proxyproto.Header
				body string
				err  error
			}
			got := make(chan result, 1)
			be := backend(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				h, err := proxyproto.Read(br)
				body, _ := io.ReadAll(br)
				got <- result{h, string(body), err}
			})
			s := &TCPServer{Handler: &Proxy{Pool: pool(t, be), ProxyProtocol: version},
				ProxyProtocol: &ProxyProtocolIn{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
			c := dial(t, startTCP(t, s))
			c.Write(append(header(t, 2, "203.0.113.7:4242", "198.51.100.1:443"), "payload"...))
			c.CloseWrite()
			r := <-got
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.h.Version != proxyVersion(version) {
				t.Fatalf("version %d", r.h.Version)
			}
			if src := r.h.SourceAddr.String(); src != "203.0.113.7:4242" {
				t.Fatalf("backend saw source %s, want the client's 203.0.113.7:4242", src)
			}
			if dst := r.h.DestinationAddr.String(); dst != "198.51.100.1:443" {
				t.Fatalf("backend saw destination %s", dst)
			}
			if r.body != "payload" {
				t.Fatalf("body %q", r.body)
			}
		})
	}
}

func TestShutdownWaitsThenCuts(t *testing.T) {
	be := backend(t, echo)
	s := &TCPServer{Handler: &Proxy{Pool: pool(t, be)}}
	ln, _ := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c := dial(t, ln.Addr().String())
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	// New connections are refused while the open one still works.
	time.Sleep(20 * time.Millisecond)
	if c2, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c2.Close()
		t.Fatal("dial succeeded after Shutdown")
	}
	c.Write([]byte("y"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("open connection broken during grace: %v", err)
	}
	if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve = %v", err)
	}
	expectClosed(t, c, time.Second)
}

func TestProxyProtocolV1Split(t *testing.T) {
	h, got := recorder()
	s := &TCPServer{Handler: h, ProxyProtocol: &ProxyProtocolIn{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Timeout: 2 * time.Second}}
	c := dial(t, startTCP(t, s))
	c.Write([]byte("PROXY T"))
	time.Sleep(30 * time.Millisecond)
	c.Write([]byte("CP4 192.0.2.10 198.51.100.20 40000 443\r\nhello"))
	select {
	case rc := <-got:
		if rc.Client.String() != "192.0.2.10:40000" {
			t.Fatalf("client = %v", rc.Client)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("split v1 header refused")
	}
}
