package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// shortPark makes connections park after 20ms for one test.
func shortPark(t *testing.T) {
	old := httpParkAfter
	httpParkAfter = 20 * time.Millisecond
	t.Cleanup(func() { httpParkAfter = old })
}

// waitParked waits until n connections of s's entrypoint "web" are parked.
func waitParked(t *testing.T, s *Server, n int) {
	t.Helper()
	l := webListener(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := l.parked.len()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get sends one GET on c and returns the body of the answer.
// dialWeb connects to s's "web" entrypoint, closed when the test ends,
// with d as the connection's deadline.
func dialWeb(t *testing.T, s *Server, d time.Duration) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(d))
	return c, bufio.NewReader(c)
}

func get(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("answer %s, close %v, body %q, error %v", resp.Status, resp.Close, b, err)
	}
	return string(b)
}

// TestHTTPParkedConnection: an idle keep-alive connection that the HTTP
// server handed back keeps serving requests on the same socket, with the routes of
// a reload made while it was parked, and Shutdown closes it at once.
func TestHTTPParkedConnection(t *testing.T) {
	eachWaiter(t, func(t *testing.T) {
		shortPark(t)
		s := started(t, fmt.Sprintf(httpRespond, "v1"))
		c, br := dialWeb(t, s, 20*time.Second)
		if b := get(t, c, br); b != "v1" {
			t.Fatalf("body %q", b)
		}
		waitParked(t, s, 1)
		if b := get(t, c, br); b != "v1" {
			t.Fatalf("after parking: body %q", b)
		}
		waitParked(t, s, 1)
		reload(t, s, fmt.Sprintf(httpRespond, "v2"))
		if b := get(t, c, br); b != "v2" {
			t.Fatalf("after a reload while parked: body %q", b)
		}
		waitParked(t, s, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Shutdown waited %v for a parked connection", d)
		}
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("parked connection after Shutdown: read %d, %v; want EOF", n, err)
		}
	})
}

// TestHTTPParkedIdleTimeout: a parked connection is closed at the
// entrypoint's idle timeout, as net/http would have closed it.
func TestHTTPParkedIdleTimeout(t *testing.T) {
	eachWaiter(t, func(t *testing.T) {
		shortPark(t)
		s := started(t, `
entrypoint "web" {
  address  = "127.0.0.1:0"
  timeouts { idle = "300ms" }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "v1"
}
service "v1" {
  respond { body = "v1" }
}
`)
		c, br := dialWeb(t, s, 20*time.Second)
		sent := time.Now()
		get(t, c, br)
		waitParked(t, s, 1)
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %d, %v; want EOF at the idle timeout", n, err)
		}
		if d := time.Since(sent); d < 290*time.Millisecond || d > 10*time.Second {
			t.Fatalf("closed %v after the request, idle timeout 300ms", d)
		}
		waitParked(t, s, 0)
	})
}

// TestHTTPParkedSlowHead: a request head that begins before the park
// delay and ends after it is served, not parked; a parked connection that
// starts with the HTTP/2 preface gets 400, not HTTP/2.
func TestHTTPParkedSlowHead(t *testing.T) {
	shortPark(t)
	s := started(t, fmt.Sprintf(httpRespond, "v1"))
	c, br := dialWeb(t, s, 20*time.Second)
	get(t, c, br)
	io.WriteString(c, "GET / HT")
	time.Sleep(100 * time.Millisecond) // longer than the park delay, on purpose
	if b := get2(t, c, br, "TP/1.1\r\nHost: x\r\n\r\n"); b != "v1" {
		t.Fatalf("body %q", b)
	}
	waitParked(t, s, 1)
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("HTTP/2 preface on a parked connection: %s, want 400", resp.Status)
	}
}

func get2(t *testing.T, c net.Conn, br *bufio.Reader, rest string) string {
	t.Helper()
	if _, err := io.WriteString(c, rest); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("answer %s", resp.Status)
	}
	return string(b)
}

// TestHTTPNextRequestAlreadyWaiting: a request that is already on the
// socket when the previous response goes out (the client sent it early) is
// read at once, not after the park deadline. (Waiting for readability
// before reading lost such requests: RawConn.Read resets the readiness the
// edge-triggered poller had reported.)
func TestHTTPNextRequestAlreadyWaiting(t *testing.T) {
	old := httpParkAfter
	httpParkAfter = 5 * time.Second
	t.Cleanup(func() { httpParkAfter = old })
	s := started(t, fmt.Sprintf(httpRespond, "v1"))
	c, br := dialWeb(t, s, 60*time.Second)
	const n = 50
	start := time.Now()
	// One request always in flight ahead of the one being answered.
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if i < n-1 {
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("%d responses took %v: a waiting request was left until the park deadline", i+1, d)
		}
	}
}

// TestHTTPSlowHeadKeepAlive: a keep-alive request whose head begins and
// then stalls is cut at timeouts.read_header, not at the (much longer)
// idle timeout, parked connection or not.
func TestHTTPSlowHeadKeepAlive(t *testing.T) {
	shortPark(t)
	s := started(t, `
entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts {
    read_header = "300ms"
    idle        = "1m"
  }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "v1"
}
service "v1" {
  respond { body = "v1" }
}
`)
	for _, pause := range []time.Duration{0, 100 * time.Millisecond} {
		c, br := dialWeb(t, s, 20*time.Second)
		get(t, c, br)
		time.Sleep(pause) // parked (longer than the park delay) or not
		io.WriteString(c, "GET / HTTP/1.1\r\nHo")
		start := time.Now()
		if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
			t.Fatalf("pause %v: a stalled head got %q, %v; want the connection closed", pause, rest, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("pause %v: stalled head cut after %v", pause, d)
		}
	}
}
