package l7

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkH1RoundTrip is the fast HTTP/1 path alone: keep-alive GETs
// through h1Transport to a minimal backend (a fixed answer per request
// head), so that ns/op and allocs/op are the transport's and the
// backend's, without an HTTP server or client around them.
func BenchmarkH1RoundTrip(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Fri, 27 Nov 2026 05:00:00 GMT\r\nContent-Length: 13\r\n\r\nHello, World!")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { ln.Close(); <-done }()
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			// A request head ends with an empty line.
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if bytes.Equal(line, []byte("\r\n")) {
					break
				}
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	}()
	tr := newH1(ln.Addr().String())
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/x", nil)
	req.Header.Set("Accept", "*/*")
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.ReadFull(resp.Body, buf[:13]); n != 13 || err != nil {
			b.Fatal(n, err)
		}
		if _, err := resp.Body.Read(buf); err != io.EOF {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}
