package l7

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
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

// The header timeout bounds the head only: a body that comes later, or one
// read later from the buffer, is not cut by it; and the connection's next
// request gets a header timeout of its own.
func TestH1TransportHeaderTimeoutNotOnBody(t *testing.T) {
	more := make(chan struct{})
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			h, ok := readHead(br)
			if !ok {
				return
			}
			switch {
			case strings.HasPrefix(h, "GET /late "):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nea")
				<-more
				io.WriteString(c, "rly")
			case strings.HasPrefix(h, "GET /silent "):
				// no answer: the header timeout must fire
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		}
	})
	const timeout = 50 * time.Millisecond
	tr := newH1(addr)
	tr.headerTimeout = timeout
	defer tr.CloseIdleConnections()
	get := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		return tr.RoundTrip(req)
	}

	resp, err := get("/buffered")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * timeout) // the deadline passes with the body unread
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
		t.Fatalf("buffered body read after the header timeout: %q, %v", b, err)
	}

	resp, err = get("/late")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * timeout)
	close(more)
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "early" {
		t.Fatalf("late body: %q, %v", b, err)
	}

	if _, err := get("/silent"); !isTimeout(err) {
		t.Fatalf("silent backend on a reused connection: %v, want a timeout", err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// Over the h1 server's request context (through reqInfo's AfterFunc), the
// client going away ends the wait for the head with the context's error;
// a request that ended normally leaves no wake-up behind to cut a later
// request on the same connection.
func TestH1TransportH1ctxCancel(t *testing.T) {
	got := make(chan string, 4)
	answer := make(chan string, 4)
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			h, ok := readHead(br)
			if !ok {
				return
			}
			got <- h
			a, ok := <-answer
			if !ok {
				return
			}
			io.WriteString(c, a)
		}
	})
	defer close(answer)
	tr := newH1(addr)
	tr.headerTimeout = time.Minute
	defer tr.CloseIdleConnections()
	do := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		return tr.RoundTrip(req)
	}

	// A request that completes, then its context is canceled (the
	// handler returned) while the next request waits on the connection.
	ctx1 := &h1ctx{Context: context.Background()}
	answer <- "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	resp, err := do(&reqInfo{Context: ctx1})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
		t.Fatalf("first body %q, %v", b, err)
	}
	<-got
	done := make(chan error, 1)
	go func() {
		resp, err := do(context.Background())
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	<-got // the second request is waiting for its head
	ctx1.cancel(context.Canceled)
	// The wake-up of the first request, had it not been stopped, runs in
	// a goroutine of its own: give it the chance to cut the wait.
	time.Sleep(50 * time.Millisecond)
	answer <- "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	if err := <-done; err != nil {
		t.Fatalf("second request, after the first one's context ended: %v", err)
	}

	// The client goes away while its request waits for the head.
	ctx3 := &h1ctx{Context: context.Background()}
	cause := errors.New("client gone")
	go func() {
		<-got
		ctx3.cancel(cause)
	}()
	if _, err := do(&reqInfo{Context: ctx3}); !errors.Is(err, cause) {
		t.Fatalf("err %v, want the context's %v", err, cause)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}
