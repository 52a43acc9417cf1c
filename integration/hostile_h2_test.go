//go:build linux

package integration

// Hostile HTTP/2 clients: frames written by hand with x/net's Framer, the
// way an attacker would, against the real binary.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Attacker is a raw HTTP/2 client connection.
type h2Attacker struct {
	c  net.Conn
	bw *bufio.Writer // under fr: frames go out at flush
	fr *http2.Framer
	hb bytes.Buffer
	he *hpack.Encoder
}

func dialH2Attacker(t testing.TB, addr string) *h2Attacker {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a := &h2Attacker{c: c, bw: bufio.NewWriterSize(c, 64<<10)}
	a.fr = http2.NewFramer(a.bw, c)
	a.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	a.he = hpack.NewEncoder(&a.hb)
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := a.fr.WriteSettings(); err != nil || a.bw.Flush() != nil {
		t.Fatal("writing the client's SETTINGS failed")
	}
	return a
}

// headerBlock encodes a GET for path on authority host.
func (a *h2Attacker) headerBlock(host, path string) []byte {
	a.hb.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", host}, {":path", path}} {
		_ = a.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return bytes.Clone(a.hb.Bytes())
}

// readUntilGone reads frames until the connection ends, acking SETTINGS,
// and reports the GOAWAY error code seen (or -1) on the returned channel.
func (a *h2Attacker) readUntilGone() <-chan int64 {
	res := make(chan int64, 1)
	go func() {
		code := int64(-1)
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				res <- code
				return
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				code = int64(g.ErrCode)
			}
		}
	}()
	return res
}

// TestHostileH2RapidReset is CVE-2023-44487: HEADERS then RST_STREAM, over
// and over on one connection. Each stream reset while its handler runs
// costs a backend request and, HTTP/1 behind, a backend connection; the
// proxy must close such a client's connection after a bounded number
// (l7/h2reset.go), as nginx and HAProxy do. Without that the connection
// stayed open and one client made the backend accept 3,389 connections
// from 20,000 streams.
func TestHostileH2RapidReset(t *testing.T) {
	var started, conns atomic.Int64
	be := startProtoHTTPBackendConns(t, slowCounting(&started), &conns)
	pp := startProtoProxy(t, false, `backend "http://`+be+`" {}`)
	admin := pp.proc.adminAddr()
	closed := func() float64 {
		return value(series(t, scrape(t, admin), "proxynow_http_connections_closed_total",
			map[string]string{"entrypoint": "web", "protocol": "HTTP/2", "reason": "rapid_reset"}))
	}

	t.Run("a few cancelled streams keep the connection", func(t *testing.T) {
		a := dialH2Attacker(t, pp.addr)
		block := a.headerBlock("rr.test", "/")
		id := uint32(1)
		for ; id < 2*50; id += 2 {
			if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
				a.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil || a.bw.Flush() != nil {
				t.Fatal("write failed")
			}
		}
		if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil || a.bw.Flush() != nil {
			t.Fatal("write failed")
		}
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				t.Fatalf("after 50 cancelled streams, waiting for stream %d's answer: %v", id, err)
			}
			if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamID == id {
				if st := h.PseudoValue("status"); st != "200" {
					t.Fatalf("stream %d: status %s, want 200", id, st)
				}
				return
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				t.Fatalf("GOAWAY %v after 50 cancelled streams", g.ErrCode)
			}
		}
	})
	if n := closed(); n != 0 {
		t.Fatalf("%v connections counted closed for rapid reset after 50 cancelled streams, want 0", n)
	}

	// The client resets each stream itself, or makes the server reset it
	// (MadeYouReset, CVE-2025-8671: a WINDOW_UPDATE of 0 on the stream is
	// a stream error); either cancels the handler and costs the same.
	for _, tc := range []struct {
		name  string
		reset func(fr *http2.Framer, id uint32) error
	}{
		{"a flood of them closes it", func(fr *http2.Framer, id uint32) error { return fr.WriteRSTStream(id, http2.ErrCodeCancel) }},
		{"a flood of server resets closes it", func(fr *http2.Framer, id uint32) error {
			return fr.WriteRawFrame(http2.FrameWindowUpdate, 0, id, []byte{0, 0, 0, 0}) // the Framer refuses 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started.Store(0)
			conns.Store(0)
			before := closed()
			const streams = 20000
			a := dialH2Attacker(t, pp.addr)
			gone := a.readUntilGone()
			block := a.headerBlock("rr.test", "/")
			sent := 0
			var werr error
			for id := uint32(1); sent < streams; id += 2 {
				werr = a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
				if werr == nil {
					werr = tc.reset(a.fr, id)
				}
				if werr == nil {
					werr = a.bw.Flush()
				}
				if werr != nil {
					break
				}
				sent++
			}
			var code int64
			select {
			case code = <-gone:
			case <-time.After(10 * time.Second):
				t.Fatalf("sent %d streams reset at once (write error %v); connection still open 10s later; backend saw %d requests on %d connections",
					sent, werr, started.Load(), conns.Load())
			}
			t.Logf("sent %d streams (write error %v), GOAWAY code %d, backend saw %d requests on %d connections", sent, werr, code, started.Load(), conns.Load())
			// A TCP close (-1) or x/net's own GOAWAY when its queue overflows.
			if code != -1 && code != int64(http2.ErrCodeEnhanceYourCalm) {
				t.Errorf("connection ended with GOAWAY code %d, want a close or ENHANCE_YOUR_CALM", code)
			}
			// The budget counts its close before closing; after x/net's
			// GOAWAY it may close (and count) too, or not.
			if n := closed() - before; (code == -1 && n != 1) || n > 1 {
				t.Errorf("connection ended (GOAWAY code %d); counted %v times closed for rapid reset, want once", code, n)
			}
			if n := conns.Load(); n > 1000 {
				t.Errorf("backend accepted %d connections for one rapid-reset client, want at most 1000", n)
			}
			if n := started.Load(); n > 1000 {
				t.Errorf("backend saw %d requests from one rapid-reset client, want at most 1000", n)
			}
		})
	}
}

// startProtoHTTPBackendConns is startProtoHTTPBackend that also counts
// the TCP connections the backend accepts in conns.
func startProtoHTTPBackendConns(t testing.TB, h http.Handler, conns *atomic.Int64) string {
	t.Helper()
	return serveProtoHTTP(t, &http.Server{Handler: h, ReadHeaderTimeout: ioTimeout, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}})
}

// slowCounting counts its requests in started and answers each 50ms
// later, or when it is cancelled: slow enough that a client's reset lands
// while the proxy waits.
func slowCounting(started *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(50 * time.Millisecond):
		}
		_, _ = io.WriteString(w, "ok")
	})
}

// TestHostileH2SilentAfterALPN: a client that negotiates h2 over TLS and
// then sends nothing, not even the preface, is closed at
// timeouts.read_header (1s here), not after x/net's own 10s.
func TestHostileH2SilentAfterALPN(t *testing.T) {
	ca := newTestCA(t, "silent")
	leaf := ca.issue(t, t.TempDir(), "proxy", protoServerName)
	p := hostileProxy(t, `respond {
    status = 200
    body   = "ok"
  }`, hcl(`
tls {
  certificate "proxy" {
    cert_file = %q
    key_file  = %q
    default   = true
  }
}`, leaf.certFile, leaf.keyFile))
	for _, preface := range []string{"", http2.ClientPreface[:10]} {
		c, err := tlsDial(p.addr("web"), &tls.Config{RootCAs: ca.pool(), ServerName: protoServerName, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.ConnectionState().NegotiatedProtocol; got != "h2" {
			t.Fatalf("ALPN %q, want h2", got)
		}
		if _, err := io.WriteString(c, preface); err != nil {
			t.Fatal(err)
		}
		el, _ := expectClosed(t, c, 15*time.Second)
		if el > 5*time.Second {
			t.Errorf("TLS h2 client that sent %q of the preface closed after %v, want about 1s", preface, el)
		}
	}
}
