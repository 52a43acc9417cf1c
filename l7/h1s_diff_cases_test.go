package l7

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// h1sRunBugs runs TestH1ServerBugs, the known bugs of the new server
// (h1sKnownBugs) as failing cases, and makes TestH1ServerDiff hide none.
var h1sRunBugs = flag.Bool("h1s.bugs", false, "run the known bugs of the h1 server as failing tests")

// knownBug is a difference from net/http found by the differential test
// that is a bug of the new server, not an intended difference. Unless
// -h1s.bugs, norm and normRec hide it on both sides so that the rest of a
// case is still compared; a bug with neither skips its cases.
type knownBug struct {
	desc    string
	cases   []string
	norm    func(*diffRound)
	normRec func(*diffRecord)
}

// h1sKnownBugs is empty: the 20 differences the differential test found
// were fixed; their cases now run compared like every other.
var h1sKnownBugs = []knownBug{}

// knownBugsOf lists the known bugs that show in case name.
func knownBugsOf(name string) []knownBug {
	var bs []knownBug
	for _, b := range h1sKnownBugs {
		if slices.Contains(b.cases, name) {
			bs = append(bs, b)
		}
	}
	return bs
}

func eachResp(f func(*diffResp)) func(*diffRound) {
	return func(rd *diffRound) {
		for i := range rd.Resps {
			f(&rd.Resps[i])
		}
	}
}

// diffCase is one entry of the differential table.
type diffCase struct {
	name       string
	parts      []string // written one after the other
	n          int      // final responses expected per round (when all goes well)
	once       bool     // no second round (the first leaves the connection unusable by design)
	closeWrite bool     // half-close after writing (one round)
	// stallOK: net/http neither answers nor closes in the end (see the
	// case); a stall then counts as a close, after a short wait.
	stallOK bool
	// allow normalises a difference intended for this case alone (on both
	// sides' rounds).
	allow func(*diffRound)
	// allowRec does the same for the handler's records.
	allowRec func(*diffRecord)
	// check asserts what the case is meant to exercise, on net/http's
	// rounds, so that a case that silently tests nothing fails.
	check func(*testing.T, []diffRound)
}

func rreq(method, target, proto string, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", method, target, proto)
	for _, f := range fields {
		b.WriteString(f)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func rget(target string, fields ...string) string {
	return rreq("GET", target, "HTTP/1.1", append([]string{"Host: h"}, fields...)...)
}

func rone(name string, raw string) diffCase { return diffCase{name: name, parts: []string{raw}, n: 1} }

// status checks the first final response's status code.
func rstatus(code int) func(*testing.T, []diffRound) {
	return func(t *testing.T, rs []diffRound) {
		t.Helper()
		for _, r := range rs[0].Resps {
			if strings.HasPrefix(r.Status, "1") {
				continue
			}
			if !strings.HasPrefix(r.Status, fmt.Sprint(code)) {
				t.Errorf("net/http answered %q, the case expects %d", r.Status, code)
			}
			return
		}
		t.Errorf("net/http did not answer; the case expects %d", code)
	}
}

func withCheck(c diffCase, f func(*testing.T, []diffRound)) diffCase { c.check = f; return c }

func rchunked(target string, body string, trailer string, fields ...string) string {
	var b strings.Builder
	b.WriteString(rreq("POST", target, "HTTP/1.1", append([]string{"Host: h", "Transfer-Encoding: chunked"}, fields...)...))
	for len(body) > 0 {
		n := min(len(body), 7)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n" + trailer + "\r\n")
	return b.String()
}

func rpost(target, body string, fields ...string) string {
	return rreq("POST", target, "HTTP/1.1", append([]string{"Host: h", fmt.Sprintf("Content-Length: %d", len(body))}, fields...)...) + body
}

// pipelineMixed is n requests of growing sizes in one write, so that heads
// and bodies straddle the server's 4 KiB read buffer at many offsets.
func pipelineMixed(n int) string {
	var b strings.Builder
	for i := range n {
		pad := strings.Repeat("p", i*97%1500)
		if i%3 == 0 {
			b.WriteString(rpost(fmt.Sprintf("/m%d", i), pad, "X-Pad: "+pad))
		} else {
			b.WriteString(rget(fmt.Sprintf("/m%d", i), "X-Pad: "+pad))
		}
	}
	return b.String()
}

// headOfSize is a GET whose head (through the empty line) is n bytes.
func headOfSize(n int) string {
	base := rget("/sized", "X-Pad: ")
	return rget("/sized", "X-Pad: "+strings.Repeat("s", n-len(base)))
}

func diffCases() []diffCase {
	manyHeaders := make([]string, 100)
	for i := range manyHeaders {
		manyHeaders[i] = fmt.Sprintf("X-H%03d: v%d", i, i)
	}
	big300k := strings.Repeat("0123456789abcdef", 300<<10/16)
	cases := []diffCase{
		// Handler behaviours.
		withCheck(rone("cl", rget("/cl")), rstatus(200)),
		rone("nolen", rget("/nolen")),
		rone("big", rget("/big")),
		rone("flush", rget("/flush")),
		rone("trailer", rget("/trailer")),
		rone("prefix-trailer", rget("/prefix-trailer")),
		rone("head", rreq("HEAD", "/head-check", "HTTP/1.1", "Host: h")),
		rone("head-cl", rreq("HEAD", "/cl", "HTTP/1.1", "Host: h")),
		rone("head-nolen", rreq("HEAD", "/nolen", "HTTP/1.1", "Host: h")),
		rone("head-big", rreq("HEAD", "/big", "HTTP/1.1", "Host: h")),
		rone("head-trailer", rreq("HEAD", "/trailer", "HTTP/1.1", "Host: h")),
		rone("get-head-check", rget("/head-check")),
		withCheck(rone("204", rget("/204")), rstatus(204)),
		withCheck(rone("304", rget("/304")), rstatus(304)),
		rone("1xx", rget("/1xx")),
		rone("close", rget("/close")),
		rone("panic", rget("/panic")),
		rone("abort", rget("/abort")),
		rone("panic-after-write", rget("/panicafter")),
		rone("hijack", rget("/hijack")),
		rone("shortcl", rget("/shortcl")),
		rone("longcl", rget("/longcl")),
		rone("sniff", rget("/sniff")),
		rone("empty", rget("/empty")),
		rone("multi", rget("/multi")),
		rone("te-set", rget("/te-set")),
		rone("head-te-set", rreq("HEAD", "/te-set", "HTTP/1.1", "Host: h")),
		withCheck(rone("error", rget("/error")), rstatus(418)),
		rone("readafter", rpost("/readafter", "abc")),
		rone("status-201", rget("/status/201")),
		rone("status-404", rget("/status/404")),
		rone("status-500", rget("/status/500")),
		rone("status-599", rget("/status/599")),
		rone("status-999", rget("/status/999")),
		{name: "status-101", parts: []string{rget("/status/101")}, n: 1, once: true,
			// A 101 without Hijack: net/http keeps reading HTTP requests on
			// the connection after it; the new server says Connection:
			// close and closes, since nothing can follow a switch it did
			// not make. Intended: the client was told the protocol changed.
			allow: func(rd *diffRound) {
				for i := range rd.Resps {
					if r := &rd.Resps[i]; strings.HasPrefix(r.Status, "101") {
						r.Close = false
						delete(r.Header, "Connection")
					}
				}
				rd.Closed = false
			}},
		rone("status-102", rget("/status/102")),

		// Pipelining and keep-alive.
		{name: "pipeline-3", parts: []string{rget("/cl") + rget("/nolen") + rget("/big")}, n: 3},
		{name: "pipeline-50-mixed", parts: []string{pipelineMixed(50)}, n: 50},
		{name: "pipeline-then-long", parts: []string{rget("/cl") + rget("/x", "X-Long: "+strings.Repeat("l", 9000)) + rget("/nolen")}, n: 3},
		rone("head-4096", headOfSize(4096)),
		rone("head-4097", headOfSize(4097)),
		rone("head-4095", headOfSize(4095)),
		{name: "pipeline-posts", parts: []string{rpost("/a", "one") + rchunked("/b", "two-chunked", "") + rpost("/c", "")}, n: 3},
		{name: "pipeline-head-get", parts: []string{rreq("HEAD", "/big", "HTTP/1.1", "Host: h") + rget("/cl") + rreq("HEAD", "/nolen", "HTTP/1.1", "Host: h")}, n: 3},
		{name: "pipeline-then-close", parts: []string{rget("/cl") + rget("/close") + rget("/cl")}, n: 3},
		{name: "pipeline-then-malformed", parts: []string{rget("/cl") + "GET / HTTP/1.1\nHost: h\r\n\r\n"}, n: 2},
		rone("conn-close", rget("/cl", "Connection: close")),
		rone("conn-close-token", rget("/cl", "Connection: foo, close")),

		// HTTP/1.0.
		rone("http10", rreq("GET", "/cl", "HTTP/1.0")),
		rone("http10-keepalive", rreq("GET", "/cl", "HTTP/1.0", "Connection: keep-alive")),
		rone("http10-keepalive-nolen", rreq("GET", "/nolen", "HTTP/1.0", "Connection: keep-alive")),
		rone("http10-keepalive-big", rreq("GET", "/big", "HTTP/1.0", "Connection: keep-alive")),
		rone("http10-nolen", rreq("GET", "/nolen", "HTTP/1.0", "Host: h")),
		rone("http10-trailer", rreq("GET", "/trailer", "HTTP/1.0", "Connection: keep-alive")),
		rone("http10-flush", rreq("GET", "/flush", "HTTP/1.0", "Connection: keep-alive")),
		{name: "http10-1xx", parts: []string{rreq("GET", "/1xx", "HTTP/1.0", "Connection: keep-alive")}, n: 1,
			// net/http sends the 103 to an HTTP/1.0 client; the new server
			// does not: RFC 9110 §15.2, a server must not send a 1xx
			// response to an HTTP/1.0 client. Intended.
			allow: func(rd *diffRound) {
				rd.Resps = slices.DeleteFunc(rd.Resps, func(r diffResp) bool { return strings.HasPrefix(r.Status, "1") })
			}},
		rone("http10-post", rreq("POST", "/x", "HTTP/1.0", "Content-Length: 3", "Connection: keep-alive")+"abc"),
		rone("http10-expect", rreq("POST", "/expect", "HTTP/1.0", "Content-Length: 3", "Expect: 100-continue", "Connection: keep-alive")+"abc"),
		rone("http10-pragma", rreq("GET", "/x", "HTTP/1.0", "Pragma: no-cache")),
		withCheck(rone("http10-chunked", rreq("POST", "/x", "HTTP/1.0", "Transfer-Encoding: chunked")+"0\r\n\r\n"), rstatus(400)),

		// Targets.
		rone("absolute", rget("http://example.com/abs?x=1", "Host: other")),
		rone("absolute-port-https", rget("https://example.com:8443/a/b")),
		rone("absolute-no-path", rget("http://example.com")),
		rone("options-star", rreq("OPTIONS", "*", "HTTP/1.1", "Host: h")),
		rone("escaped", rget("/a%20b/%2Fc?q=%41&r=%zz")),
		rone("escaped-bad", rget("/a%zz")),
		rone("hash", rget("/a#frag?q")),
		rone("semicolon", rget("/a;b=c?x=1;y=2")),
		rone("plus", rget("/a+b?c+d")),
		rone("utf8", rget("/caf\xc3\xa9?q=\xc3\xa9")),
		rone("obs-text", rget("/\xff\xfe")),
		rone("double-slash", rget("//double//x")),
		rone("query-only", rget("/q?")),
		rone("query-amp", rget("/q?&")),
		rone("query-question", rget("/q??x")),
		{name: "sub-delims", parts: []string{rget("/a!b")}, n: 1},
		{name: "sub-delims-parens", parts: []string{rget("/f(x)*y'z")}, n: 1},
		rone("dot-segments", rget("/a/../b/./c")),
		rone("query-hash", rget("/a?b#c")),
		rone("get-star", rget("*")),
		rone("long-url", rget("/"+strings.Repeat("u", 8<<10))),
		rone("lower-method", rreq("get", "/x", "HTTP/1.1", "Host: h")),
		rone("custom-method", rreq("PURGE", "/x", "HTTP/1.1", "Host: h")),

		// Header fields.
		rone("long-header", rget("/x", "X-Long: "+strings.Repeat("l", 10<<10))),
		rone("many-headers", rget("/x", manyHeaders...)),
		rone("duplicate-headers", rget("/x", "X-Dup: a", "X-Dup: b", "x-dup: c")),
		rone("header-case", rget("/x", "x-CUSTOM-hdr: 1", "USER-AGENT: ua", "content-type: t/t", "X_Under: u")),
		rone("header-ows", rget("/x", "X-Ows:  \t v \t ", "X-Empty:", "X-Utf8: caf\xc3\xa9")),
		rone("host-upper", rreq("GET", "/x", "HTTP/1.1", "HOST: up.example")),
		rone("cl-lower", rreq("POST", "/x", "HTTP/1.1", "Host: h", "content-length: 3")+"abc"),
		rone("trailer-with-cl", rpost("/x", "abc", "Trailer: X-T")),
		rone("host-missing", rreq("GET", "/x", "HTTP/1.1")),
		rone("host-two", rreq("GET", "/x", "HTTP/1.1", "Host: a", "Host: b")),
		rone("host-empty", rreq("GET", "/x", "HTTP/1.1", "Host:")),
		rone("host-port", rreq("GET", "/x", "HTTP/1.1", "Host: example.com:8080")),
		rone("host-ipv6", rreq("GET", "/x", "HTTP/1.1", "Host: [::1]:8080")),
		rone("host-invalid", rreq("GET", "/x", "HTTP/1.1", "Host: a b")),
		rone("host-slash", rreq("GET", "/x", "HTTP/1.1", "Host: a/b")),
		{name: "absolute-bad-host-header", parts: []string{rreq("GET", "http://a/x", "HTTP/1.1", "Host: a b")}, n: 1},
		rone("connect", rreq("CONNECT", "example.com:443", "HTTP/1.1", "Host: example.com:443")),
		{name: "connect-no-host", parts: []string{rreq("CONNECT", "example.com:443", "HTTP/1.1")}, n: 1},
		{name: "connect-authority-path", parts: []string{rreq("CONNECT", "example.com:443/p", "HTTP/1.1", "Host: h")}, n: 1},
		{name: "connect-bad-escape", parts: []string{rreq("CONNECT", "%zz:443", "HTTP/1.1", "Host: h")}, n: 1},
		rone("pragma-11", rget("/x", "Pragma: no-cache")),
		// A field line of exactly 4096 (or 8192) bytes before its CRLF: the
		// read buffer's size.
		rone("long-line-4096", rget("/first", "X-Long: "+strings.Repeat("a", 4096-8), "X: /smuggled HTTP/1.0")),
		rone("long-line-8192", rget("/first", "X-Long: "+strings.Repeat("a", 8192-8), "X: /smuggled HTTP/1.0")),
		rone("long-line-4095", rget("/first", "X-Long: "+strings.Repeat("a", 4095-8), "X: /not-smuggled HTTP/1.0")),
		rone("header-too-large", rget("/x", "X-Big: "+strings.Repeat("b", 1<<20+5000))),

		// Bodies.
		rone("get-with-body", rpost("/x", "hello", "X-Method: post")),
		rone("cl-zero", rpost("/x", "")),
		rone("cl-leading-zero", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Content-Length: 05")+"hello"),
		rone("cl-ows", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Content-Length:  5 ")+"hello"),
		{name: "cl-split", parts: []string{rreq("POST", "/x", "HTTP/1.1", "Host: h", "Content-Length: 11"), "hello", " world"}, n: 1},
		{name: "cl-split-head", parts: []string{"POST /x HTTP/1.1\r\nHo", "st: h\r\nContent-Length: 2\r\n", "\r\nok"}, n: 1},
		rone("chunked", rchunked("/x", "hello chunked world", "")),
		rone("chunked-trailer-declared", rchunked("/x", "abc", "X-T: tv\r\n", "Trailer: X-T")),
		rone("chunked-trailer-undeclared", rchunked("/x", "abc", "X-U: uv\r\nx-lower: lv\r\n")),
		rone("chunked-trailer-bad-decl", rchunked("/x", "abc", "", "Trailer: Content-Length")),
		rone("chunked-trailer-long", rchunked("/x", "abc", "X-T: "+strings.Repeat("t", 5000)+"\r\n", "Trailer: X-T")),
		rone("chunked-ext", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: chunked")+"3;ext=1\r\nabc\r\n0;e\r\n\r\n"),
		rone("chunked-upper", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: CHUNKED")+"3\r\nabc\r\n0\r\n\r\n"),
		{name: "chunked-split", parts: []string{rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: chunked") + "3\r\nab", "c\r\n0\r\n", "\r\n"}, n: 1},
		{name: "flushread", parts: []string{rpost("/flushread", "hello")}, n: 1,
			// A handler that sends its head before it reads the body:
			// net/http discards the body when the head goes out (the
			// handler then reads nothing: http: invalid Read on closed
			// Body) unless the handler calls EnableFullDuplex; the new
			// server is always full duplex. Intended (a proxy streams the
			// response while the request body still flows).
			allowRec: func(r *diffRecord) { r.Body, r.BodyErr = "", false }},
		rone("noread-small", rpost("/noread", "unread")),
		rone("noread-chunked-small", rchunked("/noread", "unread", "X-T: 1\r\n")),
		withCheck(diffCase{name: "noread-cl-300k", parts: []string{rpost("/noread", big300k)}, n: 1, once: true},
			rstatus(200)),
		{name: "noread-chunked-300k", parts: []string{rchunked("/noread", big300k, "")}, n: 1, once: true},
		{name: "truncated-body", parts: []string{rreq("POST", "/x", "HTTP/1.1", "Host: h", "Content-Length: 10") + "abc"}, n: 1, closeWrite: true},
		{name: "truncated-chunked", parts: []string{rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: chunked") + "a\r\nabc"}, n: 1, closeWrite: true},

		// Expect: 100-continue.
		{name: "expect-read", parts: []string{rreq("POST", "/expect", "HTTP/1.1", "Host: h", "Content-Length: 5", "Expect: 100-continue"), "hello"}, n: 1,
			check: func(t *testing.T, rs []diffRound) {
				if len(rs[0].Resps) < 2 || rs[0].Resps[0].Status != "100 Continue" {
					t.Errorf("net/http sent no 100 Continue: %+v", rs[0].Resps)
				}
			}},
		{name: "expect-noread", parts: []string{rreq("POST", "/noread", "HTTP/1.1", "Host: h", "Content-Length: 5", "Expect: 100-continue")}, n: 1,
			// The client waits for a 100 Continue and the handler does not
			// read: both answer with Connection: close. net/http then reads
			// (to discard) the body that is not coming, keeping the
			// connection until the client gives up; the new server closes
			// at once. Intended: the new server's way frees the connection.
			stallOK: true},
		{name: "expect-noread-body-sent", parts: []string{rreq("POST", "/noread", "HTTP/1.1", "Host: h", "Content-Length: 5", "Expect: 100-continue") + "hello"}, n: 1},
		rone("expect-chunked", rchunked("/expect", "abc", "", "Expect: 100-continue")),
		rone("expect-cl-zero", rreq("POST", "/expect", "HTTP/1.1", "Host: h", "Content-Length: 0", "Expect: 100-continue")),
		{name: "expect-other", parts: []string{rreq("POST", "/expect", "HTTP/1.1", "Host: h", "Content-Length: 1", "Expect: foo") + "x"}, n: 1,
			// An Expect other than 100-continue: both answer 417 and close.
			// net/http's is an empty response (Content-Length: 0, Date),
			// the new server's its error reply ("417 Expectation Failed:
			// unsupported Expect", Content-Type, no Date). Intended: an
			// error reply is an error reply.
			allow: eachResp(func(r *diffResp) {
				if strings.HasPrefix(r.Status, "417") {
					r.Status, r.Header, r.Body, r.ContentLength = "417", nil, "", -1
				}
			}),
			check: rstatus(417)},
		rone("expect-empty", rreq("POST", "/expect", "HTTP/1.1", "Host: h", "Content-Length: 1", "Expect:")+"x"),
		rone("expect-list", rreq("POST", "/expect", "HTTP/1.1", "Host: h", "Content-Length: 1", "Expect: 100-continue, foo")+"x"),
		rone("expect-two", rreq("POST", "/expect", "HTTP/1.1", "Host: h", "Content-Length: 1", "Expect: 100-continue", "Expect: 100-continue")+"x"),
		rone("expect-case", rreq("POST", "/expect", "HTTP/1.1", "Host: h", "Content-Length: 1", "Expect: 100-Continue")+"x"),
		{name: "expect-flushread", parts: []string{rreq("POST", "/flushread", "HTTP/1.1", "Host: h", "Content-Length: 5", "Expect: 100-continue") + "hello"}, n: 1},

		// Bare LF line ends (RFC 9112 §2.2), as net/http takes them: the
		// new server must find the same heads, fields and trailers.
		withCheck(rone("bare-lf", "GET / HTTP/1.1\nHost: h\n\n"), rstatus(200)),
		withCheck(rone("bare-lf-mixed", "GET /x HTTP/1.1\r\nHost: h\nX-A: b\r\nX-C: d\n\r\n"), rstatus(200)),
		{name: "bare-lf-pipelined", parts: []string{"GET /a HTTP/1.1\nHost: h\n\n" +
			"POST /b HTTP/1.1\nHost: h\nContent-Length: 8\n\nab\r\n\r\ncd" + rget("/c")}, n: 3},
		rone("bare-lf-head-chunked", "POST /t HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nTrailer: X-T\n\n3\r\nabc\r\n0\r\nX-T: v\r\n\r\n"),
		rone("bare-lf-http10", "GET /old HTTP/1.0\nHost: h\n\n"),

		// Malformed: the guard answers before either server sees the head.
		withCheck(rone("bare-lf-chunk-line", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: chunked")+"3\nabc\r\n0\r\n\r\n"), rstatus(400)),
		withCheck(rone("bare-cr", "GET / HTTP/1.1\rHost: h\r\n\r\n"), rstatus(400)),
		withCheck(rone("bare-lf-trailer", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: chunked")+"3\r\nabc\r\n0\r\nX-T: v\n\n"), rstatus(400)),
		withCheck(rone("cl-and-te", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Content-Length: 3", "Transfer-Encoding: chunked")+"0\r\n\r\n"), rstatus(400)),
		rone("te-gzip", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: gzip, chunked")+"0\r\n\r\n"),
		rone("cl-bad", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Content-Length: abc")),
		rone("cl-plus", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Content-Length: +5")+"hello"),
		rone("cl-two", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Content-Length: 1", "Content-Length: 1")+"a"),
		rone("no-proto", "GET /\r\nHost: h\r\n\r\n"),
		rone("http12", rreq("GET", "/", "HTTP/1.2", "Host: h")),
		rone("http2-line", rreq("GET", "/", "HTTP/2.0", "Host: h")),
		rone("space-before-colon", rget("/x", "X-A : b")),
		rone("obs-fold", rget("/x", "X-A: b", " c")),
		rone("nul-in-value", rget("/x", "X-A: b\x00c")),
		rone("empty-line-first", "\r\n"+rget("/x")),
		rone("target-empty", "GET  HTTP/1.1\r\nHost: h\r\n\r\n"),
		rone("target-no-slash", rget("x/y")),
		rone("bad-chunk-size", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: chunked")+"zz\r\nabc\r\n0\r\n\r\n"),
		rone("chunk-missing-crlf", rreq("POST", "/x", "HTTP/1.1", "Host: h", "Transfer-Encoding: chunked")+"3\r\nabcX0\r\n\r\n"),
		{name: "garbage", parts: []string{"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"}, n: 1, closeWrite: true},
	}
	return cases
}
