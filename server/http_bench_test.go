package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/proxynow/proxynow/config"
)

// BenchmarkHTTPKeepAlive is one keep-alive HTTP/1.1 connection through the
// whole server (l4, handoff, guard, net/http, a respond service), one
// request at a time: the per-request cost of the connection path.
func BenchmarkHTTPKeepAlive(b *testing.B) {
	c := dialBenchServer(b, fmt.Sprintf(httpRespond, "v1"))
	br := bufio.NewReader(c)
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkHTTPProxyKeepAlive is BenchmarkHTTPKeepAlive through the proxy
// to a backend that answers every request head with fixed bytes, and with
// a client that reads fixed bytes: neither allocates, so B/op and
// allocs/op are proxynow's own per proxied keep-alive request (issue 4's
// "bytes allocated per proxied request").
func BenchmarkHTTPProxyKeepAlive(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n")
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer bln.Close()
	go func() {
		for {
			c, err := bln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(answer); err != nil {
							return
						}
						have = copy(buf, buf[i+4:have])
					}
				}
			}()
		}
	}()
	c := dialBenchServer(b, fmt.Sprintf(`
entrypoint "web" { address = "127.0.0.1:0" }
http_route "r" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`, bln.Addr()))
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	// The answer as proxynow sends it: its own head, then the 13 bytes.
	readAnswer := func() {
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil {
				b.Fatal(err)
			}
			have += n
			if i := bytes.Index(buf[:have], []byte("\r\n\r\n")); i >= 0 && have >= i+4+13 {
				if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) || have != i+4+13 {
					b.Fatalf("answer %q", buf[:have])
				}
				return
			}
		}
	}
	c.Write(req)
	readAnswer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		readAnswer()
	}
}

// dialBenchServer starts a server on the configuration text and returns a
// connection to its entrypoint "web", closed with the benchmark.
func dialBenchServer(b *testing.B, text string) net.Conn {
	cfg, err := config.Parse("bench.hcl", []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", s.Addr("web").String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
