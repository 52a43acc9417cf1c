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

// rawBackend serves each accepted connection with fn on a loopback
// listener; it reports how many connections it accepted.
func rawBackend(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				fn(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String(), conns
}

// readHead reads one request head; false at EOF.
func readHead(br *bufio.Reader) (string, bool) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return b.String(), false
		}
		b.WriteString(line)
		if line == "\r\n" {
			return b.String(), true
		}
	}
}

func newH1(addr string) *h1Transport {
	d := &net.Dialer{Timeout: time.Second}
	return &h1Transport{fallback: &http.Transport{}, addr: addr, dial: d.DialContext, maxIdle: 4, idleTimeout: time.Minute, headerTimeout: 2 * time.Second}
}

func h1Get(t *testing.T, tr *h1Transport, method, path string, hdr http.Header) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://backend.invalid"+path, nil)
	req.URL.Host = tr.addr
	req.Host = "site.test"
	if hdr != nil {
		req.Header = hdr
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func TestH1TransportReuse(t *testing.T) {
	heads := make(chan string, 16)
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			h, ok := readHead(br)
			if !ok {
				return
			}
			heads <- h
			if strings.HasPrefix(h, "HEAD ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
				continue
			}
			// A 1xx before the answer, then a chunked body with a trailer.
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: v\r\n\r\n")
		}
	})
	tr := newH1(addr)
	defer tr.CloseIdleConnections()
	for i := range 3 {
		resp, body, err := h1Get(t, tr, "GET", "/p?q=1", http.Header{"X-A": {"1", "2"}, "User-Agent": {""}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || body != "ok" || resp.Trailer.Get("X-T") != "v" {
			t.Fatalf("try %d: %d %q trailer %q", i, resp.StatusCode, body, resp.Trailer)
		}
		if n, err := resp.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("read after EOF: %d, %v; want 0, io.EOF", n, err)
		}
		h := <-heads
		for _, want := range []string{"GET /p?q=1 HTTP/1.1\r\n", "Host: site.test\r\n", "X-A: 1\r\nX-A: 2\r\n"} {
			if !strings.Contains(h, want) {
				t.Fatalf("request head %q lacks %q", h, want)
			}
		}
		if strings.Contains(h, "User-Agent") || strings.Contains(h, "Content-Length") {
			t.Fatalf("request head %q: an empty User-Agent is not sent, nor a length for a bodyless GET", h)
		}
	}
	if resp, body, err := h1Get(t, tr, "HEAD", "/", nil); err != nil || resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %v %q", err, body)
	}
	<-heads
	if resp, _, err := h1Get(t, tr, "POST", "/", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %v", err)
	}
	if h := <-heads; !strings.Contains(h, "Content-Length: 0\r\n") {
		t.Fatalf("bodyless POST head %q lacks Content-Length: 0", h)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d backend connections, want 1 reused", n)
	}
}

// A connection is not reused after Connection: close, after unsolicited
// bytes, after the backend closed it while idle, or after an unread body.
func TestH1TransportNoReuse(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		early  bool // close the body unread
	}{
		{name: "connection close", answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		{name: "bytes after the body", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"},
		{name: "HTTP/1.0 without keep-alive", answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{name: "body closed unread", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", early: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, ok := readHead(br); !ok {
						return
					}
					io.WriteString(c, tt.answer)
				}
			})
			tr := newH1(addr)
			defer tr.CloseIdleConnections()
			for range 2 {
				req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if !tt.early {
					if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
						t.Fatalf("body %q", b)
					}
				}
				resp.Body.Close()
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections for 2 requests, want 2 (none reused)", n)
			}
		})
	}
}

// A pooled connection the backend closed is noticed before use, and a
// GET whose reused connection dies before any answer goes again.
func TestH1TransportStale(t *testing.T) {
	var served atomic.Int64
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); !ok {
			return
		}
		served.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// then close the keep-alive connection (return)
	})
	tr := newH1(addr)
	defer tr.CloseIdleConnections()
	for i := range 3 {
		if _, body, err := h1Get(t, tr, "GET", "/", nil); err != nil || body != "ok" {
			t.Fatalf("request %d: %v %q", i, err, body)
		}
	}
	if served.Load() != 3 || conns.Load() != 3 {
		t.Fatalf("served %d on %d connections, want 3 on 3", served.Load(), conns.Load())
	}
}

func TestH1TransportHeaderTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		readHead(br)
		<-release
	})
	defer close(release)
	tr := newH1(addr)
	tr.headerTimeout = 100 * time.Millisecond
	defer tr.CloseIdleConnections()
	_, _, err := h1Get(t, tr, "GET", "/", nil)
	if !isTimeout(err) {
		t.Fatalf("err %v, want a timeout", err)
	}

	tr.headerTimeout = time.Minute
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("client left")
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, cause) {
		t.Fatalf("err %v, want the context's cause", err)
	}
}

func TestH1TransportHeadTooLarge(t *testing.T) {
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		readHead(br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Big: " + strings.Repeat("a", 8000) + "\r\n"
		for range (h1MaxHead / len(line)) + 2 {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	tr := newH1(addr)
	defer tr.CloseIdleConnections()
	if _, _, err := h1Get(t, tr, "GET", "/", nil); !errors.Is(err, errHeadTooLarge) {
		t.Fatalf("err %v, want errHeadTooLarge", err)
	}
}

func TestH1TransportFallback(t *testing.T) {
	var got atomic.Value
	_, be := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		io.WriteString(w, "fb")
	})
	addr := strings.TrimPrefix(be, "http://")
	tr := newH1(addr)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", be+"/", strings.NewReader("payload"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "fb" || got.Load() != "payload" {
		t.Fatalf("body %q, backend got %q", b, got.Load())
	}
	if tr.fast(req, nil) {
		t.Fatal("a request with a body took the fast path")
	}
	bad, _ := http.NewRequest("GET", be+"/", nil)
	bad.Header["X-Bad"] = []string{"a\r\nInjected: 1"}
	if tr.fast(bad, nil) {
		t.Fatal("a header value with CRLF took the fast path")
	}
}

func TestH1TransportPrune(t *testing.T) {
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		}
	})
	tr := newH1(addr)
	tr.idleTimeout = 50 * time.Millisecond
	defer tr.CloseIdleConnections()
	if _, _, err := h1Get(t, tr, "GET", "/", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr.mu.Lock()
		n := len(tr.idle)
		tr.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idle connection not pruned")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
