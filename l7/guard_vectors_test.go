package l7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// guardVector is one raw request stream. A valid vector (bad == "") must
// reach the handler as want and be answered 200 each; a malformed one must be
// answered by the guard's 400 alone (after 200s for the requests in want
// before it) and closed, with the violation reason containing bad.
type guardVector struct {
	name    string
	raw     string
	bad     string
	want    []string // requests the handler sees, as recorded by guardRecorder
	maxHead int
}

const (
	gPost  = "POST /s HTTP/1.1\r\nHost: x\r\n"
	gGet   = "GET / HTTP/1.1\r\nHost: x\r\n"
	gTE    = gPost + "Transfer-Encoding: chunked\r\n\r\n"
	gFollo = "GET /follow HTTP/1.1\r\nHost: x\r\n\r\n"
)

var guardVectors = []guardVector{
	// Content-Length and Transfer-Encoding together.
	{name: "cl-then-te", raw: gPost + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", bad: "both Content-Length and Transfer-Encoding"},
	{name: "te-then-cl", raw: gPost + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST /x HTTP/1.1\r\n\r\n0\r\n\r\n", bad: "both Content-Length and Transfer-Encoding"},
	// Content-Length.
	{name: "cl-duplicate-equal", raw: gPost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", bad: "repeated Content-Length"},
	{name: "cl-duplicate-different", raw: gPost + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", bad: "repeated Content-Length"},
	{name: "cl-list-equal", raw: gPost + "Content-Length: 5, 5\r\n\r\nhello", bad: "Content-Length is a list"},
	{name: "cl-list-no-space", raw: gPost + "Content-Length: 5,5\r\n\r\nhello", bad: "Content-Length is a list"},
	{name: "cl-plus", raw: gPost + "Content-Length: +5\r\n\r\nhello", bad: "not a decimal number"},
	{name: "cl-minus", raw: gPost + "Content-Length: -1\r\n\r\n", bad: "not a decimal number"},
	{name: "cl-hex", raw: gPost + "Content-Length: 0x5\r\n\r\nhello", bad: "not a decimal number"},
	{name: "cl-letter-suffix", raw: gPost + "Content-Length: 5a\r\n\r\nhello", bad: "not a decimal number"},
	{name: "cl-inner-space", raw: gPost + "Content-Length: 1 0\r\n\r\n0123456789", bad: "whitespace inside the value"},
	{name: "cl-empty", raw: gPost + "Content-Length: \r\n\r\n", bad: "empty Content-Length"},
	{name: "cl-empty-no-space", raw: gPost + "Content-Length:\r\n\r\n", bad: "empty Content-Length"},
	{name: "cl-above-int63", raw: gPost + "Content-Length: 9223372036854775808\r\n\r\n", bad: "above 2^63-1"},
	{name: "cl-huge", raw: gPost + "Content-Length: 99999999999999999999999\r\n\r\n", bad: "above 2^63-1"},
	{name: "cl-space-before-colon", raw: gPost + "Content-Length : 5\r\n\r\nhello", bad: "whitespace between field name and colon"},
	// Transfer-Encoding.
	{name: "te-chunked-chunked", raw: gPost + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", bad: `not exactly "chunked"`},
	{name: "te-gzip-chunked", raw: gPost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", bad: `not exactly "chunked"`},
	{name: "te-chunked-param", raw: gPost + "Transfer-Encoding: chunked;x\r\n\r\n0\r\n\r\n", bad: `not exactly "chunked"`},
	{name: "te-identity", raw: gPost + "Transfer-Encoding: identity\r\n\r\n", bad: `not exactly "chunked"`},
	{name: "te-empty", raw: gPost + "Transfer-Encoding: \r\n\r\n", bad: `not exactly "chunked"`},
	{name: "te-two-spaces", raw: gPost + "Transfer-Encoding:  chunked\r\n\r\n0\r\n\r\n", bad: `not exactly "chunked"`},
	{name: "te-tab", raw: gPost + "Transfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n", bad: `not exactly "chunked"`},
	{name: "te-trailing-space", raw: gPost + "Transfer-Encoding: chunked \r\n\r\n0\r\n\r\n", bad: `not exactly "chunked"`},
	{name: "te-vertical-tab", raw: gPost + "Transfer-Encoding: \vchunked\r\n\r\n0\r\n\r\n", bad: "control character in field value"},
	{name: "te-repeated", raw: gPost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", bad: "repeated Transfer-Encoding"},
	{name: "te-space-before-colon", raw: gPost + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", bad: "whitespace between field name and colon"},
	{name: "te-http10", raw: "POST /s HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", bad: "Transfer-Encoding in an HTTP/1.0 request"},
	// Chunked bodies.
	{name: "chunk-size-zz", raw: gTE + "zz\r\nhello\r\n0\r\n\r\n", bad: "not 1*HEXDIG"},
	{name: "chunk-size-minus", raw: gTE + "-1\r\nhello\r\n0\r\n\r\n", bad: "not 1*HEXDIG"},
	{name: "chunk-size-17-digits", raw: gTE + "00000000000000005\r\nhello\r\n0\r\n\r\n", bad: "longer than 16 hex digits"},
	{name: "chunk-size-0x", raw: gTE + "0x5\r\nhello\r\n0\r\n\r\n", bad: "not 1*HEXDIG"},
	{name: "chunk-size-empty", raw: gTE + "\r\nhello\r\n0\r\n\r\n", bad: "not 1*HEXDIG"},
	{name: "chunk-size-trailing-space", raw: gTE + "5 \r\nhello\r\n0\r\n\r\n", bad: "not 1*HEXDIG"},
	{name: "chunk-data-no-crlf", raw: gTE + "5\r\nhelloXX0\r\n\r\n", bad: "chunk data not followed by CRLF"},
	{name: "chunk-data-bare-lf", raw: gTE + "5\r\nhello\n0\r\n\r\n", bad: "chunk data not followed by CRLF"},
	{name: "chunk-line-bare-lf", raw: gTE + "5\nhello\r\n0\r\n\r\n", bad: "bare LF in chunk-size line"},
	{name: "chunk-ext-control", raw: gTE + "5;a\x01b\r\nhello\r\n0\r\n\r\n", bad: "control character in chunk extension"},
	{name: "trailer-obs-fold", raw: gTE + "5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n", bad: "obs-fold"},
	{name: "trailer-content-length", raw: gTE + "5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", bad: "Content-Length in the trailer section"},
	// NUL, CR, LF and controls in the head.
	{name: "nul-in-name", raw: gGet + "X-\x00A: 1\r\n\r\n", bad: "NUL in request head"},
	{name: "nul-in-value", raw: gGet + "X-A: a\x00b\r\n\r\n", bad: "NUL in request head"},
	{name: "cr-in-value", raw: gGet + "X-A: a\rb\r\n\r\n", bad: "bare CR"},
	{name: "control-in-value", raw: gGet + "X-A: a\x01b\r\n\r\n", bad: "control character in field value"},
	{name: "del-in-value", raw: gGet + "X-A: a\x7fb\r\n\r\n", bad: "control character in field value"},
	{name: "bare-cr-end-of-head", raw: gGet + "\r", bad: "bare CR"},
	// A bare LF ends a line (RFC 9112 §2.2) only where a line may end.
	{name: "bare-lf-first", raw: "\n" + gGet + "\r\n", bad: "empty line before the request line"},
	{name: "bare-lf-in-method", raw: "GET\n/ HTTP/1.1\r\nHost: x\r\n\r\n", bad: "method is not a token followed by one SP"},
	{name: "bare-lf-missing-version", raw: "GET /\nHost: x\n\n", bad: "missing HTTP version"},
	{name: "bare-lf-short-version", raw: "GET / HTTP/1.\nHost: x\n\n", bad: "not HTTP/1.0 or HTTP/1.1"},
	{name: "bare-lf-field-without-colon", raw: gGet + "X-A\n\r\n", bad: "field line without a colon"},
	{name: "bare-lf-bad-cl", raw: gPost + "Content-Length: \n\nhello", bad: "empty Content-Length"},
	{name: "bare-lf-cr-inside", raw: "GET / HTTP/1.1\nHost: x\rX\n\n", bad: "bare CR"},
	{name: "bare-lf-trailer-field", raw: gTE + "0\r\nX-T: v\n\r\n", bad: "bare LF line ending in the trailer section"},
	{name: "bare-lf-trailer-end", raw: gTE + "0\r\n\n", bad: "bare LF line ending in the trailer section"},
	{name: "obs-fold-space", raw: gGet + "X-A: a\r\n b\r\n\r\n", bad: "obs-fold"},
	{name: "obs-fold-tab", raw: gGet + "X-A: a\r\n\tb\r\n\r\n", bad: "obs-fold"},
	{name: "space-before-colon", raw: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", bad: "whitespace between field name and colon"},
	{name: "name-not-token", raw: gGet + "X@A: 1\r\n\r\n", bad: "field name is not a token"},
	{name: "empty-name", raw: gGet + ": 1\r\n\r\n", bad: "empty field name"},
	{name: "no-colon", raw: gGet + "X-A\r\n\r\n", bad: "without a colon"},
	// Request line.
	{name: "rl-two-spaces", raw: "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", bad: "extra SP"},
	{name: "rl-tab", raw: "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", bad: "method is not a token followed by one SP"},
	{name: "rl-http12", raw: "GET / HTTP/1.2\r\nHost: x\r\n\r\n", bad: "not HTTP/1.0 or HTTP/1.1"},
	{name: "rl-http2", raw: "GET / HTTP/2.0\r\nHost: x\r\n\r\n", bad: "not HTTP/1.0 or HTTP/1.1"},
	{name: "rl-lowercase-version", raw: "GET / http/1.1\r\nHost: x\r\n\r\n", bad: "not HTTP/1.0 or HTTP/1.1"},
	{name: "rl-missing-version", raw: "GET /\r\nHost: x\r\n\r\n", bad: "missing HTTP version"},
	{name: "rl-trailing-space", raw: "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", bad: "not HTTP/1.0 or HTTP/1.1"},
	{name: "rl-method-not-token", raw: "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", bad: "method is not a token"},
	{name: "rl-control-in-target", raw: "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", bad: "control character or HTAB in request-target"},
	{name: "rl-empty-line-first", raw: "\r\n" + gGet + "\r\n", bad: "empty line before the request line"},
	{name: "pri-not-preface", raw: "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", bad: "not HTTP/1.0 or HTTP/1.1"},
	{name: "head-too-large", raw: gGet + "X-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", bad: "larger than the limit", maxHead: 4096},
	// Pipelined: the requests before the bad one are answered, in order.
	{name: "pipelined-get-then-cl-te", raw: "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" + gPost + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
		bad: "both Content-Length and Transfer-Encoding", want: []string{`GET /1 ""`}},
	{name: "pipelined-post-then-bad-chunk", raw: "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + gTE + "5\r\nhelloXX",
		bad: "chunk data not followed by CRLF", want: []string{`POST /p "hi"`}},

	// Valid: must pass through untouched.
	{name: "ok-get", raw: gGet + "\r\n", want: []string{`GET / ""`}},
	{name: "ok-connection-x-forwarded-for", raw: gGet + "Connection: X-Forwarded-For\r\n\r\n", want: []string{`GET / "" Connection=X-Forwarded-For`}},
	{name: "ok-upgrade-h2c", raw: gGet + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		want: []string{`GET / "" Connection=Upgrade, HTTP2-Settings Upgrade=h2c Http2-Settings=AAMAAABkAARAAAAAAAIAAAAA`}},
	{name: "ok-chunked-extensions-trailer", raw: gPost + "Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5;name=val\r\nhello\r\n6;a;b=\"q s\"\r\n world\r\n0\r\nX-T: done\r\n\r\n",
		want: []string{`POST /s "hello world" Trailer:X-T=done`}},
	{name: "ok-chunked-uppercase-no-space", raw: gPost + "Transfer-Encoding:CHUNKED\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", want: []string{`POST /s "0123456789"`}},
	{name: "ok-cl-ows", raw: gPost + "Content-Length: \t5  \r\n\r\nhello", want: []string{`POST /s "hello"`}},
	{name: "ok-cl-leading-zeros", raw: gPost + "Content-Length: 005\r\n\r\nhello", want: []string{`POST /s "hello"`}},
	{name: "ok-cl-zero", raw: gPost + "Content-Length: 0\r\n\r\n", want: []string{`POST /s ""`}},
	{name: "ok-pipelined-gets", raw: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		want: []string{`GET /a ""`, `GET /b ""`, `GET /c?q=1 ""`}},
	{name: "ok-keep-alive-posts", raw: "POST /p1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcPOST /p2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n",
		want: []string{`POST /p1 "abc"`, `POST /p2 "def"`}},
	{name: "ok-http10-keep-alive", raw: "POST /old HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
		want: []string{`POST /old "hi" Connection=keep-alive`}},
	{name: "ok-obs-text-value", raw: gGet + "X-A: caf\xc3\xa9\r\n\r\n", want: []string{`GET / ""`}},
	// Bare LF line ends in heads and trailers (not in chunk lines, above).
	{name: "ok-bare-lf-request-line", raw: "GET / HTTP/1.1\nHost: x\r\n\r\n", want: []string{`GET / ""`}},
	{name: "ok-bare-lf-field-line", raw: gGet + "X-A: 1\nX-B: 2\r\n\r\n", want: []string{`GET / ""`}},
	{name: "ok-bare-lf-end-of-head", raw: gGet + "\n", want: []string{`GET / ""`}},
	{name: "ok-bare-lf-then-crlf-end", raw: "GET / HTTP/1.1\nHost: x\n\r\n", want: []string{`GET / ""`}},
	{name: "ok-bare-lf-pipelined", raw: "GET /a HTTP/1.1\nHost: x\nConnection: keep-alive\n\n" +
		"POST /p HTTP/1.1\nHost: x\nContent-Length: 8\n\nab\r\n\r\ncd",
		want: []string{`GET /a "" Connection=keep-alive`, `POST /p "ab\r\n\r\ncd"`}},
	{name: "ok-bare-lf-head-chunked", raw: gPost + "Transfer-Encoding: chunked\nTrailer: X-T\n\n5\r\nhello\r\n0\r\nX-T: done\r\n\r\n",
		want: []string{`POST /s "hello" Trailer:X-T=done`}},
	// The guard stops checking after a request to switch protocols; the
	// handler refuses it here, so the connection stays HTTP/1 unchecked (the
	// l7 handler closes such connections).
	{name: "ok-upgrade-websocket-refused", raw: gGet + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", want: []string{`GET / "" Connection=Upgrade Upgrade=websocket`}},
}

// guardRecorder is the handler of the vector tests: it records each request
// it gets and answers 200 "ok" with the request's target in X-Path.
type guardRecorder struct {
	mu   sync.Mutex
	reqs []string
}

func (h *guardRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler) // a broken body gets no answer
	}
	rec := fmt.Sprintf("%s %s %q", r.Method, r.RequestURI, body)
	for _, k := range []string{"Connection", "Upgrade", "Http2-Settings"} {
		if v := r.Header.Get(k); v != "" {
			rec += " " + k + "=" + v
		}
	}
	for k, v := range r.Trailer {
		rec += " Trailer:" + k + "=" + strings.Join(v, ",")
	}
	h.mu.Lock()
	h.reqs = append(h.reqs, rec)
	h.mu.Unlock()
	w.Header().Set("X-Path", r.RequestURI)
	io.WriteString(w, "ok")
}

func (h *guardRecorder) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reqs)
}

// guardServer runs a net/http server on a guarded loopback listener; closed
// receives GuardViolation of each connection as it closes.
func guardServer(t *testing.T, h http.Handler, o GuardOptions) (addr string, gl *GuardedListener, closed chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl = NewGuardListener(ln, o)
	closed = make(chan error, 16)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				closed <- GuardViolation(c)
			}
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(gl)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String(), gl, closed
}

// guardExchange writes raw on a new connection and reads the answers until
// the one to /follow, the end of the stream or 2s. It returns the status and
// X-Path of each answer and the raw bytes read.
func guardExchange(t *testing.T, addr, raw string) (got []string, stream []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &buf))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got = append(got, fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Path")))
		if resp.Header.Get("X-Path") == "/follow" {
			break
		}
	}
	return got, buf.Bytes()
}

func TestGuardVectors(t *testing.T) {
	var bad int
	for _, v := range guardVectors {
		if v.bad != "" {
			bad++
		}
	}
	if bad < 40 {
		t.Fatalf("%d malformed vectors, want at least 40", bad)
	}
	for _, v := range guardVectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			rec := &guardRecorder{}
			addr, gl, closed := guardServer(t, rec, GuardOptions{MaxHead: v.maxHead})
			got, stream := guardExchange(t, addr, v.raw+gFollo)

			var want []string
			for _, r := range v.want {
				want = append(want, "200 "+strings.Fields(r)[1])
			}
			wantSeen := slices.Clone(v.want)
			if v.bad != "" {
				want = append(want, "400 ")
				if !bytes.HasSuffix(stream, []byte(guardReject)) {
					t.Errorf("stream does not end with the guard's 400:\n%q", stream)
				}
			} else {
				want = append(want, "200 /follow")
				wantSeen = append(wantSeen, `GET /follow ""`)
			}
			if !slices.Equal(got, want) {
				t.Errorf("answers = %q, want %q\nstream: %q", got, want, stream)
			}
			if seen := rec.seen(); !slices.Equal(seen, wantSeen) {
				t.Errorf("handler saw %q, want %q", seen, wantSeen)
			}

			var verr error
			select {
			case verr = <-closed:
			case <-time.After(3 * time.Second):
				t.Fatal("server did not close the connection")
			}
			switch {
			case v.bad == "" && verr != nil:
				t.Errorf("violation %v on a valid stream", verr)
			case v.bad != "" && (!errors.Is(verr, ErrMalformedRequest) || !strings.Contains(verr.Error(), v.bad)):
				t.Errorf("violation = %v, want one about %q", verr, v.bad)
			}
			if n, w := gl.Violations(), uint64(min(len(v.bad), 1)); n != w {
				t.Errorf("Violations() = %d, want %d", n, w)
			}
		})
	}
}
