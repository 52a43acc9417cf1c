package l7

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// respondHeaderBefore is what respond did to the client's header before
// copyEndToEnd (removeHopByHop, then the refusal's Connection: close, then
// copyHeader): the reference copyEndToEnd must match.
func respondHeaderBefore(dst, src http.Header, refused bool) {
	for _, f := range src["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				src.Del(sf)
			}
		}
	}
	for _, f := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		delete(src, f)
	}
	if refused {
		src["Connection"] = []string{"close"}
	}
	copyHeader(dst, src)
}

// respondHeaderNow is respond's header handling as it is.
func respondHeaderNow(dst, src http.Header, refused bool) {
	copyEndToEnd(dst, src)
	if refused {
		dst["Connection"] = append(dst["Connection"], closeValue...)
	}
}

// fuzzHeaders builds a backend's header from s, "name: value" lines
// (names as they come: a fallback transport's may be in any case), and
// the client header the Entry and middlewares filled before.
func fuzzHeaders(s string) (dst, src http.Header) {
	dst = http.Header{"X-Request-Id": {"id"}}
	src = http.Header{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if strings.HasPrefix(k, ">") { // already in the client's header
			dst[k[1:]] = append(dst[k[1:]], v)
			continue
		}
		src[k] = append(src[k], v)
	}
	return dst, src
}

func cloneHeader(h http.Header) http.Header {
	c := make(http.Header, len(h))
	for k, vv := range h {
		c[k] = slices.Clone(vv)
	}
	return c
}

// FuzzCopyEndToEnd: for any backend header, in any name case, and any
// client header already set, the client's header after copyEndToEnd (and
// the upgrade refusal's Connection: close) is what removeHopByHop and
// copyHeader made of it.
func FuzzCopyEndToEnd(f *testing.F) {
	for _, s := range []string{
		"Connection: X-Secret, , x-other\nX-Secret: s\nX-Other: o\nContent-Type: text/plain",
		"Connection: close\nKeep-Alive: timeout=5\nProxy-Connection: keep-alive\nTe: trailers\nTrailer: X-T\nTransfer-Encoding: chunked\nUpgrade: websocket\nProxy-Authenticate: Basic\nProxy-Authorization: x\nX-Keep: k",
		"connection: X-Secret\nX-Secret: s\nkeep-alive: 1\nTRANSFER-ENCODING: chunked",
		"Connection: X-Request-Id, Set-Cookie\nSet-Cookie: b=2\nX-Request-Id: backend\n>Set-Cookie: a=1",
		"Connection: Connection, Keep-Alive\nConnection: Content-Length\nContent-Length: 2\nKeep-Alive: 1",
		">Connection: close\nConnection: keep-alive, Upgrade\nUpgrade: h2c\nVary: Accept",
		"Connection: Trailer\nTrailer: X-A, X-B\nX-A: a",
		"Foo Bar: spaced\nConnection: foo bar\nConnection: \t X-Tab \t",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, refused bool) {
		dst, src := fuzzHeaders(s)
		oldDst, oldSrc := cloneHeader(dst), cloneHeader(src)
		respondHeaderBefore(oldDst, oldSrc, refused)
		respondHeaderNow(dst, src, refused)
		if !reflect.DeepEqual(dst, oldDst) {
			t.Fatalf("client header\n%v\nwas\n%v", dst, oldDst)
		}
		if !slices.Equal(closeValue, []string{"close"}) {
			t.Fatalf("closeValue changed: %q", closeValue)
		}
	})
}

// hopBackend answers every request (its body read by Content-Length)
// with a head carrying every hop-by-hop field, one end-to-end field the
// Connection header names, and an end-to-end field that stays.
func hopBackend(t *testing.T) string {
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			head, ok := readHead(br)
			if !ok {
				return
			}
			for line := range strings.SplitSeq(head, "\r\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
						return
					}
				}
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\n"+
				"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authenticate: Basic\r\n"+
				"Proxy-Authorization: p\r\nUpgrade: h2c\r\nTe: trailers\r\nX-Keep: k\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	return addr
}

// The hop-by-hop fields of a backend's answer do not reach a client of the
// HTTP/1 server, over each path a proxied request can take: a GET on the
// fast HTTP/1 transport, a POST with a body on net/http's Transport, and
// an Upgrade the backend refused (answered 200), after which the client
// connection gets Connection: close and ends.
func TestH1ServerResponseHopByHop(t *testing.T) {
	svc := svcFor("http://" + hopBackend(t))
	px, _ := newTestProxy(t, svc)
	front := serveEntry(t, px, true)
	for _, tc := range []struct {
		name, req string
		closes    bool
	}{
		{"fast GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"POST with a body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", false},
		{"refused upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for i := range 2 { // the second over the pooled backend connection
				if _, err := io.WriteString(c, tc.req); err != nil {
					t.Fatal(err)
				}
				head, ok := readHead(br)
				if !ok {
					t.Fatalf("request %d: no answer: %q", i, head)
				}
				resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head+"ok")), nil)
				if err != nil {
					t.Fatalf("request %d: %v\n%q", i, err, head)
				}
				if body := make([]byte, 2); resp.ContentLength != 2 {
					t.Fatalf("request %d: Content-Length %d\n%q", i, resp.ContentLength, head)
				} else if _, err := io.ReadFull(br, body); err != nil || string(body) != "ok" {
					t.Fatalf("request %d: body %q, %v", i, body, err)
				}
				for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
					"Proxy-Authorization", "Upgrade", "Te"} {
					if v, ok := resp.Header[k]; ok {
						t.Errorf("request %d: %s: %q reached the client", i, k, v)
					}
				}
				if resp.Header.Get("X-Keep") != "k" || resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("request %d: end-to-end fields lost:\n%q", i, head)
				}
				// http.ReadResponse takes Connection: close out into Close.
				conn := resp.Header["Connection"]
				if tc.closes {
					if !resp.Close || strings.Count(strings.ToLower(head), "\r\nconnection:") != 1 {
						t.Fatalf("refused upgrade: want one Connection: close\n%q", head)
					}
					if n, err := br.Read(make([]byte, 1)); err != io.EOF {
						t.Fatalf("refused upgrade: the connection went on (%d, %v)", n, err)
					}
					break
				}
				if len(conn) != 0 || resp.Close {
					t.Errorf("request %d: Connection %q reached the client", i, conn)
				}
			}
			if !slices.Equal(closeValue, []string{"close"}) {
				t.Fatalf("closeValue changed: %q", closeValue)
			}
		})
	}
}

// A refused upgrade's Connection: close joins what the client's header
// already holds for Connection (a middleware's), in one new slice; the
// backend's own Connection field and what it names stay out.
func TestRefusedUpgradeConnectionJoins(t *testing.T) {
	shared := []string{"x-mw"}
	dst := http.Header{"Connection": shared[:1:1]}
	src := http.Header{"Connection": {"X-B"}, "X-B": {"b"}, "Vary": {"Accept"}}
	respondHeaderNow(dst, src, true)
	want := http.Header{"Connection": {"x-mw", "close"}, "Vary": {"Accept"}}
	if !reflect.DeepEqual(dst, want) {
		t.Fatalf("dst = %v, want %v", dst, want)
	}
	if shared[0] != "x-mw" || !slices.Equal(closeValue, []string{"close"}) {
		t.Fatalf("a shared slice was written: %q %q", shared, closeValue)
	}
	keys := slices.Sorted(maps.Keys(src))
	if fmt.Sprint(keys) != "[Connection Vary]" {
		t.Fatalf("src keeps %v, want its Connection (hop-by-hop fields stay) and Vary", keys)
	}
}

// BenchmarkRespondHeader: a typical backend answer's header to an empty
// client header (but X-Request-Id), as respond does it now and as it did
// before copyEndToEnd.
func BenchmarkRespondHeader(b *testing.B) {
	src := http.Header{
		"Content-Type": {"text/html"}, "Content-Length": {"1234"}, "Date": {"x"}, "Server": {"s"},
		"Cache-Control": {"no-cache"}, "Etag": {`"e"`}, "Vary": {"Accept-Encoding"}, "Connection": {"keep-alive"},
	}
	for _, impl := range []struct {
		name string
		f    func(dst, src http.Header, refused bool)
	}{{"now", respondHeaderNow}, {"before", respondHeaderBefore}} {
		b.Run(impl.name, func(b *testing.B) {
			dst := make(http.Header, 16)
			s := make(http.Header, 16)
			b.ReportAllocs()
			for b.Loop() {
				clear(dst)
				clear(s)
				for k, vv := range src {
					s[k] = vv
				}
				dst["X-Request-Id"] = src["Etag"]
				impl.f(dst, s, false)
			}
		})
	}
}

// The "Connection: keep-alive" of many backends' answers (nginx's) costs
// respond no allocation: the name it gives is looked up as commonKeys
// holds it, not canonicalized anew (nor is a canonical name).
func TestCopyEndToEndKeepAliveNoAlloc(t *testing.T) {
	src := http.Header{"Connection": {"keep-alive, X-Hop"}, "Content-Type": {"text/plain"}, "X-Hop": {"h"}}
	dst := make(http.Header, 4)
	if n := testing.AllocsPerRun(100, func() {
		clear(dst)
		copyEndToEnd(dst, src)
		src["X-Hop"] = dst["Content-Type"] // back for the next run
	}); n != 0 {
		t.Fatalf("%v allocations per answer", n)
	}
	if _, ok := dst["X-Hop"]; ok || len(dst) != 1 {
		t.Fatalf("dst = %v, want Content-Type only", dst)
	}
}

// Through the HTTP/1 server, on the fast path (GET) and net/http's
// Transport (POST): a backend's 103 goes on before its answer, whose
// Trailer is announced again from the trailer keys (its own Trailer field
// being hop-by-hop) and whose trailers, announced or not, reach the
// client; its Connection and what that names do not.
func TestH1ServerTrailersAnd1xx(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		trailers     http.Header
	}{
		{"announced", "Trailer: X-T\r\n", http.Header{"X-T": {"v"}}},
		{"unannounced", "", http.Header{"X-T": {"v"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				for {
					head, ok := readHead(br)
					if !ok {
						return
					}
					if strings.HasPrefix(head, "POST ") {
						if _, err := io.CopyN(io.Discard, br, 3); err != nil {
							return
						}
					}
					if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"+
						"HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nTransfer-Encoding: chunked\r\n"+tc.answer+
						"\r\n2\r\nok\r\n0\r\nX-T: v\r\n\r\n"); err != nil {
						return
					}
				}
			})
			svc := svcFor("http://" + addr)
			px, _ := newTestProxy(t, svc)
			front := serveEntry(t, px, false)
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
			for _, method := range []string{"GET", "POST", "GET"} {
				var codes []int
				trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					codes = append(codes, code)
					return nil
				}}
				var body io.Reader
				if method == "POST" {
					body = strings.NewReader("abc")
				}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, "http://"+front+"/", body)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				announced := slices.Sorted(maps.Keys(resp.Trailer))
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" || !slices.Equal(codes, []int{103}) {
					t.Fatalf("%s: %d %q, 1xx %v", method, resp.StatusCode, b, codes)
				}
				if _, ok := resp.Header["X-Secret"]; ok {
					t.Errorf("%s: X-Secret reached the client", method)
				}
				if tc.answer != "" && !slices.Equal(announced, []string{"X-T"}) {
					t.Errorf("%s: announced trailers %v, want [X-T]", method, announced)
				}
				if !reflect.DeepEqual(resp.Trailer, tc.trailers) {
					t.Errorf("%s: trailers %v, want %v", method, resp.Trailer, tc.trailers)
				}
			}
		})
	}
}
