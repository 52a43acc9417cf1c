package middleware

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
)

// mbCountingBody yields size bytes of a repeating pattern and counts how
// many were read.
type mbCountingBody struct {
	size int64
	read atomic.Int64
}

func (b *mbCountingBody) Read(p []byte) (int, error) {
	off := b.read.Load()
	if off >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-off))
	for i := range n {
		p[i] = byte('a' + (off+int64(i))%26)
	}
	b.read.Add(int64(n))
	return n, nil
}

func mbPattern(n int64) []byte {
	b, _ := io.ReadAll(&mbCountingBody{size: n})
	return b
}

func testMaxBody(t testing.TB, limit int64) Middleware {
	t.Helper()
	mw, err := Build(&config.Middleware{Name: "mb", Kind: config.MWMaxBody, MaxBody: &config.MaxBody{Bytes: limit}}, trafficEnv)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

// Handlers behind max_body in the tests.
var (
	// mbEcho answers 200 with the body it read, or 502 on a read error as
	// httputil.ReverseProxy does.
	mbEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "bad gateway")
			return
		}
		_, _ = w.Write(b)
	})
	mbBadRequest = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "your body", http.StatusBadRequest)
		}
	})
	mbStreaming = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "started")
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusInternalServerError) // superfluous: stays 200
		}
	})
)

func TestMaxBody(t *testing.T) {
	const limit = 1000
	tests := []struct {
		name      string
		size      int64
		chunked   bool // unknown length: ContentLength -1
		handler   http.Handler
		want      int
		wantBody  string // "" with want 200: the request body echoed intact
		maxRead   int64  // at most this much of the body is read
		wantClose bool
	}{
		{name: "length under the limit", size: 999, handler: mbEcho, want: 200, maxRead: 999},
		{name: "length at the limit", size: limit, handler: mbEcho, want: 200, maxRead: limit},
		{name: "length over the limit", size: 1001, handler: mbEcho, want: 413, wantBody: "413 Request Entity Too Large\n", maxRead: 0, wantClose: true},
		{name: "length far over the limit", size: 1 << 30, handler: mbEcho, want: 413, wantBody: "413 Request Entity Too Large\n", maxRead: 0, wantClose: true},
		{name: "chunked under the limit", size: 999, chunked: true, handler: mbEcho, want: 200, maxRead: 999},
		{name: "chunked at the limit", size: limit, chunked: true, handler: mbEcho, want: 200, maxRead: limit + 1},
		{name: "chunked over the limit: 502 becomes 413", size: 1 << 30, chunked: true, handler: mbEcho, want: 413, wantBody: "413 Request Entity Too Large\n", maxRead: limit + 1, wantClose: true},
		{name: "chunked over the limit: a 4xx is kept", size: 1 << 20, chunked: true, handler: mbBadRequest, want: 400, wantBody: "your body\n", maxRead: limit + 1, wantClose: true},
		{name: "chunked over the limit: a started answer is kept", size: 1 << 20, chunked: true, handler: mbStreaming, want: 200, wantBody: "started", maxRead: limit + 1},
		{name: "empty body", size: 0, handler: mbEcho, want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &mbCountingBody{size: tt.size}
			r := httptest.NewRequest(http.MethodPost, "/", body)
			r.ContentLength = tt.size
			if tt.chunked {
				r.ContentLength = -1
			}
			if tt.size == 0 {
				r.Body = http.NoBody
			}
			w := httptest.NewRecorder()
			testMaxBody(t, limit)(tt.handler).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if tt.wantBody == "" && tt.want == 200 {
				if !bytes.Equal(w.Body.Bytes(), mbPattern(tt.size)) {
					t.Errorf("body of %d bytes came through altered: %d bytes", tt.size, w.Body.Len())
				}
			} else if w.Body.String() != tt.wantBody {
				t.Errorf("body %q, want %q", w.Body, tt.wantBody)
			}
			if n := body.read.Load(); n > tt.maxRead {
				t.Errorf("%d bytes of the body read, want at most %d", n, tt.maxRead)
			}
			if got := w.Header().Get("Connection") == "close"; got != tt.wantClose {
				t.Errorf("Connection: close %v, want %v", got, tt.wantClose)
			}
			if tt.want == 413 && w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
			}
		})
	}
}

// TestMaxBodyReverseProxy sends an over-long chunked body through a real
// server and httputil.ReverseProxy: the proxy's 502 becomes 413, and
// little of the body is read.
func TestMaxBodyReverseProxy(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const limit = 64 << 10
	var backendGot atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		backendGot.Store(n)
		_, _ = fmt.Fprintf(w, "got %d", n)
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	front := httptest.NewServer(testMaxBody(t, limit)(rp))
	defer front.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	for _, tt := range []struct {
		name string
		size int64
		want int
	}{
		{"under the limit", limit, 200},
		{"over the limit", 1 << 30, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := &mbCountingBody{size: tt.size}
			req, _ := http.NewRequest(http.MethodPost, front.URL, io.NopCloser(body)) // unknown length: chunked
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, got, tt.want)
			}
			if tt.want == 200 && string(got) != fmt.Sprintf("got %d", tt.size) {
				t.Fatalf("backend answered %q", got)
			}
			if tt.want == 413 {
				if string(got) != "413 Request Entity Too Large\n" || !resp.Close {
					t.Errorf("body %q, close %v; want the 413 text and Connection: close", got, resp.Close)
				}
				// The client's writes stop once the server closes; what was
				// read is the limit plus socket buffers, far from the 1 GiB.
				t.Logf("the client wrote %d bytes of the 1 GiB body", body.read.Load())
				if n := body.read.Load(); n > 64<<20 {
					t.Errorf("client wrote %d bytes of the body", n)
				}
			}
		})
	}
}

// TestMaxBodyContentLengthCloses checks over a raw connection that a
// refused Content-Length is answered before the body is sent, and that the
// connection is then closed, so nothing after the body is parsed as a
// request. (net/http still drains up to 256 KiB of a short body after the
// answer, so that closing does not reset the connection before the client
// reads it; a longer one is not read at all.)
func TestMaxBodyContentLengthCloses(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var calls atomic.Int64
	srv := httptest.NewServer(testMaxBody(t, 10)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) })))
	defer srv.Close()
	next := "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tt := range []struct {
		name     string
		declared int
		sendBody bool // send the declared body and a next request after the answer
	}{
		{"short body drained then closed", 100000, true},
		{"long body not read", 1 << 30, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", tt.declared); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil) // before any of the body was sent
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 413 || !resp.Close || string(b) != "413 Request Entity Too Large\n" {
				t.Fatalf("got %d close=%v %q", resp.StatusCode, resp.Close, b)
			}
			if tt.sendBody {
				_, _ = c.Write(append(bytes.Repeat([]byte("x"), tt.declared), next...))
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("after the 413: %q, %v; want the connection closed", rest, err)
			}
			if n := calls.Load(); n != 0 {
				t.Fatalf("handler called %d times", n)
			}
		})
	}
}

func TestMaxBodyConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  *config.MaxBody
		want string
	}{
		{"missing block", nil, "missing block"},
		{"zero", &config.MaxBody{}, "bytes must be greater than 0"},
		{"negative", &config.MaxBody{Bytes: -1}, "bytes must be greater than 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newMaxBody(&config.Middleware{Kind: config.MWMaxBody, MaxBody: tt.cfg}, trafficEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func BenchmarkMaxBody(b *testing.B) {
	h := testMaxBody(b, 1<<20)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	for _, bc := range []struct {
		name    string
		chunked bool
	}{{"content_length", false}, {"chunked", true}} {
		b.Run(bc.name, func(b *testing.B) {
			payload := make([]byte, 4096)
			rd := bytes.NewReader(payload)
			r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(rd))
			r.ContentLength = int64(len(payload))
			if bc.chunked {
				r.ContentLength = -1
			}
			w := &trafficBenchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(payload)
				h.ServeHTTP(w, r)
			}
		})
	}
}
