package l7

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startH1 serves h with NewServer on a loopback listener.
func startH1Server(t *testing.T, h http.Handler, o ServerOptions) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Handler = h
	srv := NewServer(o)
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return srv, ln.Addr().String()
}

// The client closing its connection cancels the request's context while the
// handler waits (the watcher starts once a request runs h1sWatchDelay).
func TestH1ServerClientGoneCancels(t *testing.T) {
	canceled := make(chan error, 1)
	_, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			canceled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			canceled <- nil
		}
	}), ServerOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-canceled:
		if err == nil {
			t.Fatal("context not canceled when the client went away")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("handler did not return")
	}
}

// A pipelined request behind a slow one is not mistaken for the client
// going away, and is answered in order.
func TestH1ServerPipelinedBehindSlow(t *testing.T) {
	_, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
				http.Error(w, "canceled", 500)
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		io.WriteString(w, r.URL.Path)
	}), ServerOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(40 * time.Millisecond) // the watcher is reading by now
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/slow", "/next"} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(b) != want {
			t.Fatalf("got %d %q, want 200 %q", res.StatusCode, b, want)
		}
	}
}

// Shutdown waits for a request in flight, which ends with Connection:
// close, and closes idle connections at once.
func TestH1ServerShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	srv, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(started)
			<-release
		}
		io.WriteString(w, "ok")
	}), ServerOptions{})
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	ibr := bufio.NewReader(idle)
	res, err := http.ReadResponse(ibr, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatal(res, err)
	}
	io.ReadAll(res.Body)
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	res, err = http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Close {
		t.Fatal("response during shutdown did not close the connection")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// h2c with prior knowledge goes to HTTP/2; a 10 KiB+ header block that
// exceeds MaxHeaderBytes gets 431.
func TestH1ServerH2cAnd431(t *testing.T) {
	_, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), ServerOptions{MaxHeaderBytes: 4096})
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	defer h2.CloseIdleConnections()
	res, err := (&http.Client{Transport: h2}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "HTTP/2.0" {
		t.Fatalf("h2c request served as %q", b)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 10000)+"\r\n\r\n")
	res, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !res.Close {
		t.Fatalf("status %d close %v, want 431 and close", res.StatusCode, res.Close)
	}
}

// A request body that stops arriving ends after timeouts.idle; the
// handler's read fails and the connection closes.
func TestH1ServerBodyStallTimeout(t *testing.T) {
	got := make(chan error, 1)
	_, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		got <- err
	}), ServerOptions{IdleTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("a stalled body read succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled body was never cut")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("connection not closed cleanly: %v", err)
	}
}

// Keep-alive over TLS: the idle wait between requests (buffers released,
// one byte read) loses nothing, also with pauses and pipelining.
func TestH1ServerTLSKeepAlive(t *testing.T) {
	cert := guardTestCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ServerOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "no TLS state", 500)
			return
		}
		io.WriteString(w, r.URL.Path)
	})})
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	defer func() { srv.Close(); <-done }()

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	read := func(want string) {
		t.Helper()
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(b) != want {
			t.Fatalf("got %d %q, want 200 %q", res.StatusCode, b, want)
		}
	}
	for i := range 20 {
		p := "/r" + strconv.Itoa(i)
		io.WriteString(c, "GET "+p+" HTTP/1.1\r\nHost: x\r\n\r\n")
		read(p)
		if i%5 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Two pipelined, the second split across writes.
	io.WriteString(c, "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTT")
	time.Sleep(10 * time.Millisecond)
	io.WriteString(c, "P/1.1\r\nHost: x\r\n\r\n")
	read("/p1")
	read("/p2")
}
