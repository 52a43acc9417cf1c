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

// countingConn counts the read deadlines put on it.
type countingConn struct {
	net.Conn
	sets *atomic.Int64
}

func (c countingConn) SetReadDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.Conn.SetReadDeadline(t)
}

// answerBackend answers each request at once, "GET /slow" after slow, and
// "GET /silent" never.
func answerBackend(t *testing.T, slow time.Duration) string {
	t.Helper()
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			h, ok := readHead(br)
			if !ok {
				return
			}
			switch {
			case strings.HasPrefix(h, "GET /silent "):
				io.Copy(io.Discard, br)
				return
			case strings.HasPrefix(h, "GET /slow "):
				time.Sleep(slow)
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	return addr
}

// TestH1TransportHeaderDeadlineKept: keep-alive requests on one connection
// keep the header deadline already on the socket while it is at most
// headerTimeout/hdrSlack sooner than their own: one timer update for 50
// requests, where each request set its own before.
func TestH1TransportHeaderDeadlineKept(t *testing.T) {
	addr := answerBackend(t, 0)
	tr := newH1(addr)
	tr.headerTimeout = time.Minute
	var sets atomic.Int64
	d := &net.Dialer{Timeout: time.Second}
	tr.dial = func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &sets}, nil
	}
	defer tr.CloseIdleConnections()
	for i := range 50 {
		if _, body, err := h1Get(t, tr, "GET", "/", nil); err != nil || body != "ok" {
			t.Fatalf("request %d: %v %q", i, err, body)
		}
	}
	if n := sets.Load(); n != 1 {
		t.Fatalf("%d read deadlines for 50 requests, want 1", n)
	}
}

// TestH1TransportKeptHeaderDeadlineExact: a kept header deadline that fires
// before the request's own is moved to it, so the timeout is still exact:
// an answer after the kept deadline but within the request's timeout is
// read, and a backend that stays silent fails the request no sooner than
// the timeout after it began.
func TestH1TransportKeptHeaderDeadlineExact(t *testing.T) {
	addr := answerBackend(t, 400*time.Millisecond)
	tr := newH1(addr)
	tr.headerTimeout = 2 * time.Second
	defer tr.CloseIdleConnections()
	if _, _, err := h1Get(t, tr, "GET", "/", nil); err != nil {
		t.Fatal(err)
	}
	// The pooled connection's deadline is made to fire long before the
	// next request's own, as a kept one does (up to 125 ms here).
	tr.mu.Lock()
	c := tr.idle[0]
	tr.mu.Unlock()
	early := time.Now().Add(50 * time.Millisecond)
	c.nc.SetReadDeadline(early)
	c.hdrSock = monoNow() + int64(tr.headerTimeout-10*time.Millisecond)
	if _, body, err := h1Get(t, tr, "GET", "/slow", nil); err != nil || body != "ok" {
		t.Fatalf("answer 400ms after a deadline that fired at 50ms: %v %q", err, body)
	}

	// A real kept deadline, 50 ms sooner than the request's own.
	if _, _, err := h1Get(t, tr, "GET", "/", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	_, _, err := h1Get(t, tr, "GET", "/silent", nil)
	if took := time.Since(start); !isTimeout(err) || took < tr.headerTimeout {
		t.Fatalf("silent backend: %v after %v, want a timeout after %v or more", err, took, tr.headerTimeout)
	}
}

// TestH1TransportWakeAfterEarlyHeaderDeadline: a request whose context ends
// while it waits, after a kept header deadline fired early and was moved
// on, ends at once; the wake-up is not overwritten by the moved deadline.
func TestH1TransportWakeAfterEarlyHeaderDeadline(t *testing.T) {
	addr := answerBackend(t, 0)
	tr := newH1(addr)
	tr.headerTimeout = time.Minute
	defer tr.CloseIdleConnections()
	if _, _, err := h1Get(t, tr, "GET", "/", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		tr.mu.Lock()
		var c *h1Conn
		if len(tr.idle) > 0 {
			c = tr.idle[0]
		}
		tr.mu.Unlock()
		if c != nil {
			c.nc.SetReadDeadline(time.Now().Add(time.Duration(i) * time.Millisecond))
			c.hdrSock = monoNow() + int64(tr.headerTimeout-time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/silent", nil)
		start := time.Now()
		_, err := tr.RoundTrip(req)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || took > 10*time.Second {
			t.Fatalf("round %d: %v after %v, want the context's deadline at once", i, err, took)
		}
		// The silent request's connection is gone; the next one dials.
		if _, _, err := h1Get(t, tr, "GET", "/", nil); err != nil {
			t.Fatal(err)
		}
	}
}
