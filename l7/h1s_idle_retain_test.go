package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An idle keep-alive client connection keeps nothing of the request it
// last carried: neither the request's head (its h1req, through the
// body-less request's h1body) nor the backend's response head (the
// writer's header values are substrings of it). n connections, each after
// one request with a 256 KiB request head and a 256 KiB response head,
// stay open and idle while the heap is measured.
func TestIdleClientConnKeepsNoHeads(t *testing.T) {
	const (
		n   = 8
		pad = 256 << 10
	)
	big := strings.Repeat("r", pad)
	// A backend of its own, not headRecorder: that one keeps the heads.
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+big+"\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	svc := svcFor("http://" + addr)
	px, _ := newTestProxy(t, svc)
	front := serveEntry(t, px, false)
	filler := strings.Repeat("p", pad)
	before := liveHeap()
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", i, filler)
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(resp.Header.Get("X-Big")) != pad {
			t.Fatalf("request %d: status %d, X-Big of %d bytes", i, resp.StatusCode, len(resp.Header.Get("X-Big")))
		}
		resp = nil
	}
	// Only the test's own copies of the last response could be left; the
	// server's connections are idle, awaiting their next request.
	if grown, ok := heapGrowthWithin(before, n*pad/2, 0); !ok {
		t.Fatalf("the heap grew by %d KiB with %d idle connections after requests and responses with %d KiB heads: idle connections keep them", grown>>10, n, pad>>10)
	}
}
