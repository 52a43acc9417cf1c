package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// slowBackend answers /slow once release is closed (started gets a value
// as each /slow request arrives), anything else at once with "ok".
func slowBackend(t *testing.T) (addr string, started chan struct{}, release chan struct{}) {
	t.Helper()
	started, release = make(chan struct{}, 16), make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(be.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return be.Listener.Addr().String(), started, release
}

const parkProxyConfig = `
entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts {
    read_header = "300ms"
    idle        = "1m"
  }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`

// readBody reads one response and returns its body; it wants 200.
func readBody(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("answer %s, body %q, error %v", resp.Status, b, err)
	}
	return string(b)
}

// TestHTTPPipelinedSplitHead: on a parkable connection, a request head
// that begins while the previous request is proxied (the client-gone
// watcher reads its first byte and the guard the rest) and then stalls is
// cut at timeouts.read_header. Failed on main (85424f0): the watcher's
// end replaced the head's deadline by none and the guard did not put it
// back (headTimed), nor the idle deadline (noteIdleDeadline leaves it off
// the socket): the connection was held for ever.
func TestHTTPPipelinedSplitHead(t *testing.T) {
	shortPark(t)
	addr, begun, release := slowBackend(t)
	s := started(t, fmt.Sprintf(parkProxyConfig, addr))
	c, err := net.Dial("tcp", s.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-begun
	time.Sleep(100 * time.Millisecond) // the watcher reads by now
	io.WriteString(c, "GET / HTTP/1.1\r\nHo")
	time.Sleep(100 * time.Millisecond) // the guard holds the head
	close(release)
	if b := readBody(t, br); b != "ok" {
		t.Fatalf("body %q", b)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(br); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled pipelined head holds the connection (got %q)", rest)
	}
}
