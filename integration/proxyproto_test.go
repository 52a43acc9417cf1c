//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// ppResult is what a PROXY-parsing backend saw on one connection.
type ppResult struct {
	h   *proxyproto.Header
	err error
}

// ppBackend parses a PROXY header with go-proxyproto, reports it, then
// echoes the rest of the stream.
func ppBackend(t *testing.T) (*tcpBackend, chan ppResult) {
	ch := make(chan ppResult, 16)
	b := startTCPBackend(t, func(_ *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		select {
		case ch <- ppResult{h, err}:
		default:
		}
		if err != nil {
			return
		}
		_, _ = io.Copy(c, br)
		_ = c.CloseWrite()
	})
	return b, ch
}

// recordingBackend keeps every byte it receives and echoes nothing.
type recording struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recording) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

func recordingBackend(t *testing.T) (*tcpBackend, *recording) {
	rec := &recording{}
	b := startTCPBackend(t, func(_ *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			rec.mu.Lock()
			rec.buf.Write(buf[:n])
			rec.mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	return b, rec
}

func waitHeader(t *testing.T, ch chan ppResult) *proxyproto.Header {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("backend could not parse a PROXY header: %v", r.err)
		}
		return r.h
	case <-time.After(ioTimeout):
		t.Fatal("backend saw no connection")
		return nil
	}
}

func TestProxyProtocolFromHAProxy(t *testing.T) {
	haproxy := requireTool(t, "haproxy")
	be, headers := ppBackend(t)
	p := startProxy(t, hcl(`
entrypoint "pp" {
  address = "127.0.0.1:0"
  proxy_protocol {
    trusted = ["127.0.0.0/8"]
    timeout = "5s"
  }
}
tcp_route "r" {
  entrypoints = ["pp"]
  service     = "s"
}
service "s" {
  proxy_protocol = "v2"
  backend %q {}
}
`, be.addr))

	front := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := writeFile(t, "haproxy.cfg", fmt.Sprintf(`
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind %s
  default_backend be
backend be
  server s1 %s send-proxy-v2
`, front, p.addr("pp")))
	hp := startHelper(t, haproxy, "-f", cfg, "-db")
	waitDial(t, front, readyTimeout, hp.done)

	c := dialTCP(t, front)
	if got, err := roundTrip(c, "through haproxy"); err != nil || got != "through haproxy" {
		t.Fatalf("echo through haproxy and proxynow: %q, %v", got, err)
	}
	// waitDial's probes may have produced headers too: look for ours.
	want := c.LocalAddr().String()
	var seen []string
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-headers:
			if r.err != nil {
				t.Fatalf("backend could not parse a PROXY header: %v", r.err)
			}
			src, dst, ok := r.h.TCPAddrs()
			if r.h.Version != 2 || !ok {
				t.Fatalf("backend header: version %d, TCP addrs ok=%v (%+v); want v2 TCP", r.h.Version, ok, r.h)
			}
			if src.String() == want {
				t.Logf("backend header: %s -> %s", src, dst)
				return
			}
			seen = append(seen, src.String())
		case <-deadline:
			t.Fatalf("no backend header with source %s (the client's own address); saw sources %v", want, seen)
		}
	}
}

func TestProxyProtocolHeaders(t *testing.T) {
	be, headers := ppBackend(t)
	p := startProxy(t, hcl(`
entrypoint "out_v1" {
  address = "127.0.0.1:0"
  proxy_protocol {
    trusted = ["127.0.0.0/8"]
  }
}
entrypoint "out_v2" {
  address = "127.0.0.1:0"
  proxy_protocol {
    trusted = ["127.0.0.0/8"]
  }
}
tcp_route "r1" {
  entrypoints = ["out_v1"]
  service     = "s1"
}
tcp_route "r2" {
  entrypoints = ["out_v2"]
  service     = "s2"
}
service "s1" {
  proxy_protocol = "v1"
  backend %[1]q {}
}
service "s2" {
  proxy_protocol = "v2"
  backend %[1]q {}
}
`, be.addr))

	src := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10).To4(), Port: 40000}
	dst := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 20).To4(), Port: 443}
	v1 := []byte("PROXY TCP4 192.0.2.10 198.51.100.20 40000 443\r\n")
	v2, err := proxyproto.HeaderProxyFromAddrs(2, src, dst).Format()
	if err != nil {
		t.Fatal(err)
	}
	local := []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00") // v2 LOCAL, no addresses
	unknown := []byte("PROXY UNKNOWN\r\n")
	tests := []struct {
		name string
		in   []byte
		// chunked writes the header a few bytes at a time. Only for v2: the
		// PROXY spec lets a receiver drop a partial v1 header, and
		// go-proxyproto does (its parseVersion1 needs the line in one read).
		chunked    bool
		entrypoint string
		wantVer    byte
		real       bool // LOCAL/UNKNOWN: the connection's own addresses are forwarded
	}{
		{name: "v1 in, v1 out", in: v1, entrypoint: "out_v1", wantVer: 1},
		{name: "v2 in, v2 out", in: v2, entrypoint: "out_v2", wantVer: 2},
		{name: "v1 in, v2 out", in: v1, entrypoint: "out_v2", wantVer: 2},
		{name: "v2 in, v1 out", in: v2, entrypoint: "out_v1", wantVer: 1},
		{name: "v2 split across writes", in: v2, chunked: true, entrypoint: "out_v2", wantVer: 2},
		{name: "v2 LOCAL uses the real addresses", in: local, entrypoint: "out_v2", wantVer: 2, real: true},
		{name: "v1 UNKNOWN uses the real addresses", in: unknown, entrypoint: "out_v2", wantVer: 2, real: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, p.addr(tc.entrypoint))
			step := len(tc.in)
			if tc.chunked {
				step = 7
			}
			for i := 0; i < len(tc.in); i += step {
				if _, err := c.Write(tc.in[i:min(i+step, len(tc.in))]); err != nil {
					t.Fatal(err)
				}
				if tc.chunked {
					time.Sleep(20 * time.Millisecond)
				}
			}
			if got, err := roundTrip(c, "payload after the header"); err != nil || got != "payload after the header" {
				t.Fatalf("echo: %q, %v", got, err)
			}
			h := waitHeader(t, headers)
			wantSrc, wantDst := src.String(), dst.String()
			if tc.real {
				wantSrc, wantDst = c.LocalAddr().String(), c.RemoteAddr().String()
			}
			gs, gd, ok := h.TCPAddrs()
			if h.Version != tc.wantVer || !ok || gs.String() != wantSrc || gd.String() != wantDst {
				t.Errorf("backend header v%d %v -> %v (TCP %v), want v%d %v -> %v", h.Version, gs, gd, ok, tc.wantVer, wantSrc, wantDst)
			}
		})
	}
}

func TestProxyProtocolRefused(t *testing.T) {
	v2, err := proxyproto.HeaderProxyFromAddrs(2,
		&net.TCPAddr{IP: net.IPv4(192, 0, 2, 10).To4(), Port: 40000},
		&net.TCPAddr{IP: net.IPv4(198, 51, 100, 20).To4(), Port: 443}).Format()
	if err != nil {
		t.Fatal(err)
	}
	v1 := []byte("PROXY TCP4 192.0.2.10 198.51.100.20 40000 443\r\n")

	config := func(trusted, backend string) string {
		return hcl(`
entrypoint "pp" {
  address = "127.0.0.1:0"
  proxy_protocol {
    trusted = [%q]
    timeout = "300ms"
  }
}
tcp_route "r" {
  entrypoints = ["pp"]
  service     = "s"
}
service "s" {
  backend %q {}
}
`, trusted, backend)
	}

	// 10.255.255.0/24 is only a CIDR in the config: 127.0.0.1 is untrusted.
	for _, tc := range []struct {
		name string
		hdr  []byte
	}{{"untrusted peer sending v1", v1}, {"untrusted peer sending v2", v2}} {
		t.Run(tc.name, func(t *testing.T) {
			be, rec := recordingBackend(t)
			p := startProxy(t, config("10.255.255.0/24", be.addr))
			_, got := dialExpectClosed(t, p.addr("pp"), append(bytes.Clone(tc.hdr), "hello"...), 5*time.Second)
			if len(got) != 0 {
				t.Errorf("client got %q, want the connection closed", got)
			}
			time.Sleep(100 * time.Millisecond)
			if b := rec.bytes(); bytes.Contains(b, []byte("PROXY")) || bytes.Contains(b, proxyproto.SIGV2) {
				t.Errorf("backend received the untrusted header: %q", trunc(b))
			}
		})
	}

	t.Run("untrusted peer without header is proxied", func(t *testing.T) {
		be := startTCPBackend(t, echo)
		p := startProxy(t, config("10.255.255.0/24", be.addr))
		c := dialTCP(t, p.addr("pp"))
		if got, err := roundTrip(c, "plain"); err != nil || got != "plain" {
			t.Fatalf("echo: %q, %v", got, err)
		}
	})

	t.Run("trusted peer without header is refused", func(t *testing.T) {
		be, rec := recordingBackend(t)
		p := startProxy(t, config("127.0.0.0/8", be.addr))
		if _, got := dialExpectClosed(t, p.addr("pp"), []byte("GET / HTTP/1.0\r\n\r\n"), 5*time.Second); len(got) != 0 {
			t.Errorf("client got %q, want the connection closed", got)
		}
		time.Sleep(100 * time.Millisecond)
		if b := rec.bytes(); len(b) != 0 {
			t.Errorf("backend received %q from a trusted peer that sent no header", trunc(b))
		}
	})

	t.Run("trusted peer stalling is closed after the header timeout", func(t *testing.T) {
		be, _ := recordingBackend(t)
		p := startProxy(t, config("127.0.0.0/8", be.addr))
		c := dialTCP(t, p.addr("pp"))
		el, _ := expectClosed(t, c, 5*time.Second)
		if el > 2*time.Second || el < 200*time.Millisecond {
			t.Errorf("stalled connection closed after %v, want about the 300ms header timeout (at most 2s)", el)
		}
	})
}
