//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawBackend is an HTTP/1.1 backend that records the raw bytes of every
// request it receives and parses them strictly itself: a request that is not
// in canonical form (exactly one framing, CRLF line endings) is a desync.
type rawBackend struct {
	addr string
	mu   sync.Mutex
	reqs []string // raw request heads, one per request
	bad  []string // requests that were not well formed
}

func startRawBackend(t *testing.T) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return b
}

func (b *rawBackend) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for {
		var head bytes.Buffer
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		h := head.String()
		problem := ""
		if strings.Contains(strings.ReplaceAll(h, "\r\n", ""), "\n") || strings.Contains(h, "\r\r") {
			problem = "bare LF or CR"
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(h)))
		if err != nil {
			problem = err.Error()
		} else if len(req.Header["Content-Length"]) > 0 && len(req.TransferEncoding) > 0 {
			problem = "both framings"
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, h)
		if problem != "" {
			b.bad = append(b.bad, problem+": "+h)
		}
		b.mu.Unlock()
		if err != nil {
			return
		}
		// Read the body by the framing it announced.
		if req.ContentLength > 0 {
			io.CopyN(io.Discard, br, req.ContentLength)
		} else if len(req.TransferEncoding) > 0 {
			if !skipChunked(br) {
				return
			}
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

// skipChunked reads a chunked body and its trailers from br, strictly.
func skipChunked(br *bufio.Reader) bool {
	for {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			return false
		}
		size, _, _ := strings.Cut(strings.TrimSuffix(line, "\r\n"), ";")
		var n int64
		if _, err := fmt.Sscanf(size, "%x", &n); err != nil || n < 0 {
			return false
		}
		if n == 0 {
			for { // trailers
				line, err := br.ReadString('\n')
				if err != nil {
					return false
				}
				if line == "\r\n" {
					return true
				}
			}
		}
		if _, err := io.CopyN(io.Discard, br, n+2); err != nil {
			return false
		}
	}
}

// matching returns the recorded heads whose request line contains s.
func (b *rawBackend) matching(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, h := range b.reqs {
		if line, _, _ := strings.Cut(h, "\r\n"); strings.Contains(line, s) {
			out = append(out, h)
		}
	}
	return out
}

func (b *rawBackend) snapshot() (reqs, bad []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.reqs...), append([]string(nil), b.bad...)
}

// TestRequestHygiene sends malformed requests on raw sockets through the
// real binary, each followed by GET /follow on the same connection: every
// one gets 400 (or a closed connection), the backend never sees the
// malformed request nor /follow smuggled behind it, and everything the
// backend does see is well formed.
func TestRequestHygiene(t *testing.T) {
	be := startRawBackend(t)
	p := startProxy(t, fmt.Sprintf(`
log { format = "json" }
entrypoint "web" { address = "127.0.0.1:0" }
http_route "all" {
  entrypoints = ["web"]
  service     = "raw"
}
service "raw" {
  backend "http://%s" {}
}
`, be.addr))
	addr := p.addr("web")

	const follow = "GET /follow HTTP/1.1\r\nHost: x\r\n\r\n"
	// body marks vectors whose head is well formed: the proxy may already
	// have forwarded that head when the body turns out malformed (requests
	// stream); the backend then sees a cut-off request and a closed
	// connection, never the bytes behind it.
	malformed := []struct {
		name, req string
		body      bool
	}{
		{name: "CL then TE", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "TE then CL", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
		{name: "duplicate CL equal", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nA"},
		{name: "duplicate CL different", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nAB"},
		{name: "CL comma list", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\nA"},
		{name: "CL signed", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nA"},
		{name: "CL negative", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"},
		{name: "CL hex", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x1\r\n\r\nA"},
		{name: "CL empty", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n"},
		{name: "CL inner space", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n"},
		{name: "CL huge", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"},
		{name: "TE chunked twice", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"},
		{name: "TE gzip chunked", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{name: "TE identity", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n"},
		{name: "TE with parameter", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n"},
		{name: "TE tab", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n"},
		{name: "TE vertical tab", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n"},
		{name: "TE repeated header", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "TE space before colon", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
		{name: "TE on HTTP/1.0", req: "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "chunk size not hex", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", body: true},
		{name: "chunk size negative", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", body: true},
		{name: "chunk size 0x", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", body: true},
		{name: "chunk size too long", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\n", body: true},
		{name: "chunk data without CRLF", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n", body: true},
		{name: "chunk line bare LF", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", body: true},
		{name: "NUL in header value", req: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"},
		{name: "NUL in header name", req: "GET / HTTP/1.1\r\nHost: x\r\nX\x00A: b\r\n\r\n"},
		{name: "CR in header value", req: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"},
		{name: "bare CR request line", req: "GET / HTTP/1.1\rHost: x\r\n\r\n"},
		{name: "bare CR end of head", req: "GET / HTTP/1.1\r\nHost: x\r\n\rX"},
		{name: "bare LF in trailer", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\n\r\n", body: true},
		{name: "obs-fold space", req: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"},
		{name: "obs-fold tab", req: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n"},
		{name: "space before colon", req: "GET / HTTP/1.1\r\nHost : x\r\n\r\n"},
		{name: "invalid name char", req: "GET / HTTP/1.1\r\nHost: x\r\nX@A: b\r\n\r\n"},
		{name: "no colon", req: "GET / HTTP/1.1\r\nHost: x\r\nXA\r\n\r\n"},
		{name: "two spaces in request line", req: "GET  / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "tab in request line", req: "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "HTTP/1.2", req: "GET / HTTP/1.2\r\nHost: x\r\n\r\n"},
		{name: "missing version", req: "GET /\r\nHost: x\r\n\r\n"},
		{name: "control byte in target", req: "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "missing Host", req: "GET / HTTP/1.1\r\n\r\n"},
		{name: "two Hosts", req: "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"},
	}
	for i, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			// Each vector has its own paths: requests still in flight from
			// an earlier vector cannot be mistaken for this one's.
			tag := fmt.Sprintf("m%d", i)
			req := strings.Replace(tt.req, " / HTTP", " /"+tag+" HTTP", 1)
			got := rawExchange(t, addr, req+strings.Replace(follow, "/follow", "/follow-"+tag, 1), never)
			if !strings.HasPrefix(got, "HTTP/1.1 400 ") && got != "" {
				t.Fatalf("response %q, want 400 or a closed connection", firstLine(got))
			}
			if strings.Count(got, "HTTP/1.1 ") > 1 {
				t.Fatalf("more than one response (the smuggled /follow was served): %q", got)
			}
			time.Sleep(20 * time.Millisecond) // let anything forwarded arrive
			if f := be.matching("/follow-" + tag + " "); len(f) != 0 {
				t.Fatalf("the smuggled request reached the backend: %q", f)
			}
			seen := be.matching("/" + tag + " ")
			if len(seen) > 1 || len(seen) == 1 && !tt.body {
				t.Fatalf("backend saw %q", seen)
			}
		})
	}

	valid := []struct {
		name, req string
		want      int // requests the backend must see, /follow included
	}{
		{"plain GET", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 2},
		{"Connection names X-Forwarded-For", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: X-Forwarded-For\r\n\r\n", 2},
		{"client Upgrade h2c", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", 2},
		{"chunked with extension and trailer", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", 2},
		{"CL with OWS", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:  5 \r\n\r\nhello", 2},
		// RFC 9112 §2.2: a bare LF ends a head's line; the backend gets CRLF.
		{"bare LF request line", "GET /a HTTP/1.1\nHost: x\r\n\r\n", 2},
		{"bare LF header", "GET /a HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 2},
		{"bare LF end of head", "GET /a HTTP/1.1\r\nHost: x\r\n\n", 2},
		{"bare LF everywhere with a body", "POST /a HTTP/1.1\nHost: x\nContent-Length: 4\n\n\r\n\r\n", 2},
	}
	for i, tt := range valid {
		t.Run("valid/"+tt.name, func(t *testing.T) {
			tag := fmt.Sprintf("v%d", i)
			req := strings.Replace(tt.req, " /a HTTP", " /"+tag+" HTTP", 1)
			got := rawExchange(t, addr, req+strings.Replace(follow, "/follow", "/follow-"+tag, 1), responses(2))
			if n := strings.Count(got, "HTTP/1.1 200 OK"); n != 2 {
				t.Fatalf("%d 200 responses in %q, want 2", n, got)
			}
			seen := append(be.matching("/"+tag+" "), be.matching("/follow-"+tag+" ")...)
			if len(seen) != tt.want {
				t.Fatalf("backend saw %d requests, want %d: %q", len(seen), tt.want, seen)
			}
			for _, h := range seen {
				for _, banned := range []string{"Upgrade: h2c", "Http2-Settings", "HTTP2-Settings"} {
					if strings.Contains(h, banned) {
						t.Fatalf("backend saw %q in %q", banned, h)
					}
				}
				if !strings.Contains(h, "X-Forwarded-For: 127.0.0.1") {
					t.Fatalf("X-Forwarded-For missing in %q", h)
				}
			}
		})
	}
	if _, bad := be.snapshot(); len(bad) > 0 {
		t.Fatalf("backend received %d malformed requests (desync): %q", len(bad), bad)
	}
}

// rawExchange writes req on a new connection and returns everything read
// until the proxy closes, done says the answer is complete, or 3 s pass.
// (No half-close: net/http takes a client's EOF for a client gone away.)
func rawExchange(t *testing.T, addr, req string, done func(string) bool) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil || done(string(got)) {
			return string(got)
		}
	}
}

func never(string) bool { return false }

func responses(n int) func(string) bool {
	return func(s string) bool { return strings.Count(s, "\r\n\r\nok") >= n }
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
