//go:build linux

package integration

// HTTP/2 requests whose fields would be harmless in HTTP/2's binary
// framing but break an HTTP/1 request line or header if copied as they
// are: the proxy downgrades to an HTTP/1 backend, which must only ever see
// well-formed requests.

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Answer sends one request of fields (and body, if any) on stream 1 of
// a new connection and returns its :status, or "" for a reset stream or a
// closed connection.
func h2Answer(t *testing.T, addr string, fields [][2]string, body string) string {
	t.Helper()
	a := dialH2Attacker(t, addr)
	a.hb.Reset()
	for _, f := range fields {
		_ = a.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.hb.Bytes(), EndStream: body == "", EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if body != "" {
		if err := a.fr.WriteData(1, true, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := a.fr.ReadFrame()
		if err != nil {
			return ""
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				return f.PseudoValue("status")
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return ""
			}
		case *http2.GoAwayFrame:
			return ""
		}
	}
}

// TestHostileH2Downgrade: every such request is refused (400 or a reset
// stream) or reaches the backend well formed, escaped where HTTP/1 needs
// it; none is answered 5xx (it would count against the backend), and a
// body past the declared length is never read as a second request. A
// :method that is not a token was answered 502 before (l7/entry.go).
func TestHostileH2Downgrade(t *testing.T) {
	be := startRawBackend(t)
	pp := startProtoProxy(t, false, `backend "http://`+be.addr+`" {}`)
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
	req := func(path, authority string, extra ...[2]string) [][2]string {
		return append([][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", authority}, {":path", path}}, extra...)
	}
	for _, tc := range []struct {
		name   string
		fields [][2]string
		body   string
	}{
		{name: "space in path", fields: req("/a HTTP/1.1", "h")},
		{name: "tab in path", fields: req("/a\tb", "h")},
		{name: "obs-text in path", fields: req("/a\x80\xff", "h")},
		{name: "space in authority", fields: req("/", "a b")},
		{name: "tab in authority", fields: req("/", "a\tb")},
		{name: "slash in authority", fields: req("/", "a/b")},
		{name: "userinfo in authority", fields: req("/", "u@h")},
		{name: "space in method", fields: [][2]string{{":method", "GET /x"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"}}},
		{name: "host header differing from authority", fields: req("/", "h", [2]string{"host", "other"})},
		{name: "transfer-encoding chunked", fields: req("/", "h", [2]string{"transfer-encoding", "chunked"}), body: "0\r\n\r\n" + smuggled},
		{name: "content-length 0 with a body", fields: req("/", "h", [2]string{"content-length", "0"}), body: smuggled},
		{name: "content-length short of the body", fields: req("/", "h", [2]string{"content-length", "1"}), body: "x" + smuggled},
		{name: "two content-lengths", fields: req("/", "h", [2]string{"content-length", "1"}, [2]string{"content-length", "37"}), body: "x" + smuggled},
		{name: "te gzip", fields: req("/", "h", [2]string{"te", "gzip"})},
		{name: "connection header", fields: req("/", "h", [2]string{"connection", "keep-alive"})},
		{name: "upgrade header", fields: req("/", "h", [2]string{"upgrade", "websocket"})},
		{name: "obs-text in value", fields: req("/", "h", [2]string{"x-a", "\x80\xff"})},
		{name: "tab-led value", fields: req("/", "h", [2]string{"x-a", "\tv"})},
		{name: "cookie crumbs", fields: req("/", "h", [2]string{"cookie", "a=1"}, [2]string{"cookie", "b=2"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n0, _ := be.snapshot()
			status := h2Answer(t, pp.addr, tc.fields, tc.body)
			if strings.HasPrefix(status, "5") {
				t.Errorf("status %s: a malformed request answered as the backend's failure", status)
			}
			time.Sleep(20 * time.Millisecond) // let anything forwarded arrive
			reqs, bad := be.snapshot()
			for _, h := range reqs[len(n0):] {
				line, _, _ := strings.Cut(h, "\r\n")
				t.Logf("status %q; backend saw %q", status, line)
				if strings.Count(line, " ") != 2 {
					t.Errorf("request line %q", line)
				}
			}
			if len(bad) > 0 {
				t.Errorf("backend saw malformed requests: %q", bad)
			}
			if m := be.matching("/smuggled"); len(m) > 0 {
				t.Errorf("the smuggled request reached the backend: %q", m)
			}
			if len(reqs) == len(n0) {
				t.Logf("status %q; backend saw nothing", status)
			}
		})
	}
}
