package l7

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// A reused connection whose backend stays silent until the header timeout
// fails the request; it is not sent again on another connection.
func TestH1TransportTimeoutNotRetried(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var heads atomic.Int64
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			if heads.Add(1) > 1 {
				<-release
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := newH1(addr)
	defer tr.CloseIdleConnections()
	if _, body, err := h1Get(t, tr, "GET", "/", nil); err != nil || body != "ok" {
		t.Fatalf("first request: %v %q", err, body)
	}
	tr.headerTimeout = 100 * time.Millisecond
	if _, _, err := h1Get(t, tr, "GET", "/", nil); !isTimeout(err) {
		t.Fatalf("err %v, want a timeout", err)
	}
	if n, h := conns.Load(), heads.Load(); n != 1 || h != 2 {
		t.Fatalf("%d connections, %d requests; want 1, 2 (no retry after a timeout)", n, h)
	}
}

// Many keep-alive requests from several goroutines: a wait that missed the
// answer's readiness would hang a request until the header timeout.
func TestH1TransportWaitStress(t *testing.T) {
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := newH1(addr)
	tr.headerTimeout = 30 * time.Second
	defer tr.CloseIdleConnections()
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for range 500 {
				req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					done <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
