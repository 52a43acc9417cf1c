package l7

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Real clients against the HTTP/1 server (the NEW path: l7.Server's
// Serve): net/http's Transport, curl, and clients that go away while the
// handler waits.

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startH1 serves h on a loopback listener with the new server.
func startH1(t *testing.T, h http.Handler) (url string, ln *countingListener) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = &countingListener{Listener: inner}
	srv := NewServer(ServerOptions{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second})
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "http://" + inner.Addr().String(), ln
}

// echoSum answers with the length and SHA-256 of the request body, and
// the method and protocol.
var echoSum = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %d %x", r.Method, r.Proto, len(b), sha256.Sum256(b))
})

func sumLine(method, proto string, b []byte) string {
	return fmt.Sprintf("%s %s %d %x", method, proto, len(b), sha256.Sum256(b))
}

func TestH1ServerClientKeepAlive(t *testing.T) {
	url, ln := startH1(t, echoSum)
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	reused := 0
	for i := range 200 {
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
			if ci.Reused {
				reused++
			}
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url+"/k"+strconv.Itoa(i), nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := sumLine("GET", "HTTP/1.1", nil); string(b) != want || resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
	}
	if n := ln.n.Load(); n != 1 || reused != 199 {
		t.Errorf("200 requests used %d connections (%d reused), want 1", n, reused)
	}
}

func TestH1ServerClientPostBodies(t *testing.T) {
	url, ln := startH1(t, echoSum)
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20/16)
	for _, body := range [][]byte{nil, {'x'}, big} {
		for _, chunked := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(body)
			if chunked {
				r = io.MultiReader(r) // no length known: Transfer-Encoding: chunked
			}
			req, _ := http.NewRequest("POST", url+"/post", r)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("POST %d bytes (chunked %v): %v", len(body), chunked, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := sumLine("POST", "HTTP/1.1", body); string(b) != want {
				t.Errorf("POST %d bytes (chunked %v): got %q, want %q", len(body), chunked, b, want)
			}
		}
	}
	if n := ln.n.Load(); n != 1 {
		t.Errorf("6 POSTs used %d connections, want 1", n)
	}
}

// trackedBody records whether the Transport read it.
type trackedBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

func TestH1ServerClientExpectContinue(t *testing.T) {
	url, _ := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			http.Error(w, "no", http.StatusForbidden) // the body is not read
			return
		}
		echoSum(w, r)
	}))
	// A timeout far longer than the test: the body goes only after a 100
	// Continue.
	tr := &http.Transport{ExpectContinueTimeout: time.Hour}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	body := bytes.Repeat([]byte("e"), 64<<10)

	var got100 atomic.Bool
	trace := &httptrace.ClientTrace{Got100Continue: func() { got100.Store(true) }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "PUT", url+"/read", bytes.NewReader(body))
	req.Header.Set("Expect", "100-continue")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := sumLine("PUT", "HTTP/1.1", body); string(b) != want || !got100.Load() {
		t.Errorf("Expect: 100-continue, handler reads: got %q (100 Continue seen: %v), want %q after a 100 Continue", b, got100.Load(), want)
	}

	tb := &trackedBody{r: bytes.NewReader(body)}
	req, _ = http.NewRequest("PUT", url+"/refuse", tb)
	req.ContentLength = int64(len(body))
	req.Header.Set("Expect", "100-continue")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || tb.read.Load() {
		t.Errorf("Expect: 100-continue, handler refuses: status %d, body sent %v; want 403 and no body", resp.StatusCode, tb.read.Load())
	}
	if !resp.Close {
		t.Errorf("a refused 100-continue request must end the connection (the body may or may not follow): response without Connection: close")
	}
}

// curlOrSkip returns curl's path; without curl the test is skipped, except
// under CI=true.
func curlOrSkip(t *testing.T) string {
	p, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is required under CI=true")
		}
		t.Skip("curl not installed (this skip is an error under CI=true)")
	}
	return p
}

func TestH1ServerCurl(t *testing.T) {
	curl := curlOrSkip(t)
	url, _ := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/head" {
			w.Header().Set("X-Head", "1")
			io.WriteString(w, "0123456789")
			return
		}
		w.Header().Set("X-Te", strings.Join(r.TransferEncoding, ","))
		echoSum(w, r)
	}))
	dir := t.TempDir()
	upload := filepath.Join(dir, "up")
	data := bytes.Repeat([]byte("curl upload "), 50000)
	if err := os.WriteFile(upload, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, append([]string{"-sS", "--max-time", "20"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if got, want := run("-0", url+"/ten"), sumLine("GET", "HTTP/1.0", nil); got != want {
		t.Errorf("curl -0: %q, want %q", got, want)
	}
	// Two URLs on one curl: the second reuses the connection (curl says so
	// on stderr with -v).
	out := run("-v", "--http1.1", url+"/a", url+"/b")
	if !strings.Contains(out, "Re-using existing connection") && !strings.Contains(out, "Reusing existing") {
		t.Errorf("curl --http1.1 with two URLs did not reuse the connection:\n%s", out)
	}
	if want := sumLine("GET", "HTTP/1.1", nil); strings.Count(out, want) != 2 {
		t.Errorf("curl --http1.1: want two answers %q in:\n%s", want, out)
	}
	head := run("-I", url+"/head")
	if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || !strings.Contains(head, "X-Head: 1") {
		t.Errorf("curl -I: %q", head)
	}
	got := run("-H", "Transfer-Encoding: chunked", "--data-binary", "@"+upload, "-D", "-", url+"/up")
	if !strings.Contains(got, "X-Te: chunked") || !strings.HasSuffix(got, sumLine("POST", "HTTP/1.1", data)) {
		t.Errorf("curl chunked upload: %q, want X-Te: chunked and %q", got, sumLine("POST", "HTTP/1.1", data))
	}
}

// TestH1ServerClientGone: a client that goes away while its handler waits
// cancels the request's context. The server watches for that only once a
// request has run 20 ms with its body read.
func TestH1ServerClientGone(t *testing.T) {
	started := make(chan string, 4)
	cancelled := make(chan string, 4)
	url, _ := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		started <- r.URL.Path
		select {
		case <-r.Context().Done():
			cancelled <- r.URL.Path
		case <-time.After(30 * time.Second):
			cancelled <- r.URL.Path + " not cancelled"
		}
	}))
	addr := strings.TrimPrefix(url, "http://")
	for _, raw := range []string{
		"GET /get HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /post HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		path := <-started
		c.Close()
		t0 := time.Now()
		select {
		case got := <-cancelled:
			if got != path {
				t.Errorf("%s: %s", path, got)
			}
			t.Logf("%s: context cancelled %v after the client closed", path, time.Since(t0).Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the context is not cancelled 10 s after the client went away", path)
		}
	}
}

// TestH1ServerWatchPipelined: a request pipelined behind a slow one is not
// taken for the client going away, and is answered after it.
func TestH1ServerWatchPipelined(t *testing.T) {
	var mu sync.Mutex
	var errs []string
	url, _ := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// Long past the watch delay: the watcher reads the pipelined
			// request's first byte meanwhile.
			select {
			case <-r.Context().Done():
				mu.Lock()
				errs = append(errs, "the slow request's context was cancelled")
				mu.Unlock()
			case <-time.After(300 * time.Millisecond):
			}
		}
		io.WriteString(w, r.URL.Path)
	}))
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/slow", "/next"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer to %s: %v", want, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Errorf("answer %q, want %q", b, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		t.Error(e)
	}
}
