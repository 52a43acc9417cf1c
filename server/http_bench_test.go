package server

import (
	"bufio"
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
	cfg, err := config.Parse("bench.hcl", []byte(fmt.Sprintf(httpRespond, "v1")))
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
	defer c.Close()
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
