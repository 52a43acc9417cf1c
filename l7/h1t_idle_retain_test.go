package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// An idle pooled backend connection keeps nothing of the last request it
// carried: once n requests with 512 KiB heads, over n backend connections
// at once, are answered and their clients gone, their heads are garbage.
//
// Fails on main: the fast HTTP/1 path lets the request's h1ctx wake the
// backend connection (setWaker) and keeps it in h1Conn.wctx after the
// round trip, so each idle backend connection holds its last client
// request's h1req — the http.Request, the reqInfo and, through the
// header values, the whole head — until its next request or idle
// timeout. The fix belongs to h1transport.go: the unwake closure drops
// c.wctx as it clears the waker (it runs once per round trip).
func TestIdleBackendConnKeepsNoRequest(t *testing.T) {
	const (
		n   = 8
		pad = 512 << 10
	)
	var arrived sync.WaitGroup
	arrived.Add(n)
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		first := true
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			if first { // answer once all n are in: n backend connections
				arrived.Done()
				arrived.Wait()
				first = false
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	svc := svcFor("http://" + addr)
	px, _ := newTestProxy(t, svc)
	front := serveEntry(t, px, false)
	filler := strings.Repeat("p", pad)
	before := liveHeap()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			c, err := net.Dial("tcp", front)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", i, filler)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("request %d: status %d", i, resp.StatusCode)
				}
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := conns.Load(); got != n {
		t.Fatalf("%d backend connections, want %d", got, n)
	}
	// The client connections are closed; their server side ends on its own.
	if grown, ok := heapGrowthWithin(before, n*pad/2, 10*time.Second); !ok {
		t.Fatalf("the heap grew by %d KiB after %d requests with %d KiB heads: idle backend connections keep their requests", grown>>10, n, pad>>10)
	}
}
