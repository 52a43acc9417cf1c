//go:build linux

package integration

// A hostile HTTP/3 client: rapid reset over QUIC streams.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	quic "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
)

// h3HeadersFrame is an HTTP/3 HEADERS frame for GET https://host/path.
func h3HeadersFrame(host, path string) []byte {
	var fields bytes.Buffer
	enc := qpack.NewEncoder(&fields)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", host}, {":path", path}} {
		_ = enc.WriteField(qpack.HeaderField{Name: f[0], Value: f[1]})
	}
	b := quicvarint.Append(nil, 0x01) // HEADERS
	b = quicvarint.Append(b, uint64(fields.Len()))
	return append(b, fields.Bytes()...)
}

// TestHostileH3RapidReset is CVE-2023-44487 over QUIC: a whole request
// sent on a stream (HEADERS and FIN), then STOP_SENDING for its answer,
// over and over on one connection. Each request cancelled while its
// handler runs costs a backend request and an HTTP/1 backend connection:
// before quic/reset.go one client made the backend accept 19,896
// connections in 3 seconds. The proxy must close such a connection with
// H3_EXCESSIVE_LOAD after a bounded number. (A stream reset before its
// HEADERS are whole costs nothing: quic-go never starts its handler.)
func TestHostileH3RapidReset(t *testing.T) {
	var started, conns atomic.Int64
	be := startProtoHTTPBackendConns(t, slowCounting(&started), &conns)
	ca := newTestCA(t, "h3rr")
	p := startH3Proxy(t, ca, be)
	resetCloses := map[string]string{"entrypoint": "web", "protocol": "HTTP/3", "reason": "rapid_reset"}
	wantValue(t, scrape(t, p.adminAddr()), "proxynow_http_connections_closed_total", resetCloses, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, p.addr("web"),
		&tls.Config{RootCAs: ca.pool(), ServerName: "t.test", NextProtos: []string{http3.NextProtoH3}},
		&quic.Config{HandshakeIdleTimeout: 10 * time.Second, MaxIdleTimeout: ioTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	frame := h3HeadersFrame("t.test", "/")
	const streams = 20000
	sent := 0
	var serr error
	start := time.Now()
	for ; sent < streams && time.Since(start) < 10*time.Second; sent++ {
		var str *quic.Stream
		if str, serr = conn.OpenStreamSync(ctx); serr != nil {
			break
		}
		if _, serr = str.Write(frame); serr != nil {
			break
		}
		_ = str.Close()
		str.CancelRead(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
	}
	t.Logf("opened and reset %d streams in %v (error %v); backend saw %d requests on %d connections",
		sent, time.Since(start).Round(time.Millisecond), serr, started.Load(), conns.Load())
	var ae *quic.ApplicationError
	if !errors.As(serr, &ae) || ae.ErrorCode != quic.ApplicationErrorCode(http3.ErrCodeExcessiveLoad) {
		t.Errorf("after %d reset streams: error %v, want the connection closed with H3_EXCESSIVE_LOAD", sent, serr)
	}
	if n := conns.Load(); n > 1000 {
		t.Errorf("backend accepted %d connections for one rapid-reset client, want at most 1000", n)
	}
	wantValue(t, scrape(t, p.adminAddr()), "proxynow_http_connections_closed_total", resetCloses, 1)
}

// quicInitial is the first datagram of a quic-go client's handshake: an
// Initial with a fresh connection ID, made by dialing a socket that only
// listens.
func quicInitial(t testing.TB, sink *net.UDPConn) []byte {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = quic.DialAddr(ctx, sink.LocalAddr().String(), &tls.Config{ServerName: "t.test", NextProtos: []string{http3.NextProtoH3}}, nil)
	}()
	buf := make([]byte, 2048)
	_ = sink.SetReadDeadline(time.Now().Add(ioTimeout))
	n, _, err := sink.ReadFromUDP(buf)
	cancel()
	<-done
	if err != nil {
		t.Fatalf("capturing an Initial: %v", err)
	}
	return bytes.Clone(buf[:n])
}

// TestHostileQUICInitialFlood: 400 client Initials, each with its own
// connection ID and source port, whose senders never answer. The proxy
// must stay within bounded memory (past retry_threshold handshakes in
// progress new clients are asked for a Retry first) and go on serving a
// real client during the flood.
func TestHostileQUICInitialFlood(t *testing.T) {
	ca := newTestCA(t, "h3flood")
	be := startHTTPBackend(t, "app")
	p := startH3Proxy(t, ca, be.addr)
	paddr, err := net.ResolveUDPAddr("udp", p.addr("web"))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	const floods = 400
	initials := make([][]byte, floods)
	for i := range initials {
		initials[i] = quicInitial(t, sink)
	}
	pid := p.cmd.Process.Pid
	before, err := rssBytes(pid)
	if err != nil {
		t.Fatal(err)
	}
	rss := startRSSSampler(pid)
	for i, b := range initials {
		c, err := net.DialUDP("udp", nil, paddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(b)
		c.Close() // the answers go nowhere
		if i == floods/2 {
			r := mustDo(t, newH3Client(t, ca, "t.test"), "https://"+p.addr("web"), reqSpec{path: "/during"})
			if r.status != 200 || r.proto != 3 {
				t.Fatalf("a real client during the flood: %d HTTP/%d", r.status, r.proto)
			}
		}
	}
	r := mustDo(t, newH3Client(t, ca, "t.test"), "https://"+p.addr("web"), reqSpec{path: "/after"})
	if r.status != 200 || r.proto != 3 {
		t.Fatalf("a real client after the flood: %d HTTP/%d", r.status, r.proto)
	}
	if peak := rss.finish(); peak-before > 64<<20 {
		t.Errorf("proxy RSS grew from %d MiB to %d MiB under %d abandoned handshakes", before>>20, peak>>20, floods)
	} else {
		t.Logf("RSS %d -> %d MiB under %d abandoned handshakes", before>>20, peak>>20, floods)
	}
}

// h3Status reads str's first frame, which must be HEADERS, and returns
// its :status.
func h3Status(str *quic.Stream) (string, error) {
	r := quicvarint.NewReader(str)
	typ, err := quicvarint.Read(r)
	if err != nil {
		return "", err
	}
	n, err := quicvarint.Read(r)
	if err != nil {
		return "", err
	}
	if typ != 0x01 || n > 16<<10 {
		return "", fmt.Errorf("frame type %#x of %d bytes, want HEADERS", typ, n)
	}
	block := make([]byte, n)
	if _, err := io.ReadFull(r, block); err != nil {
		return "", err
	}
	next := qpack.NewDecoder().Decode(block)
	for {
		f, err := next()
		if err != nil {
			return "", err
		}
		if f.Name == ":status" {
			return f.Value, nil
		}
	}
}

// TestHostileH3BodyStall: a request whose body stops after a byte, on a
// connection the client keeps alive, ends at timeouts.idle (1s here) with
// 408, as over HTTP/1 and HTTP/2, and the backend request waiting for
// the body ends with it. Before l7/stall.go timed body reads it was held
// for as long as the client wished.
func TestHostileH3BodyStall(t *testing.T) {
	var started, ended atomic.Int64
	be := startProtoHTTPBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		defer ended.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	ca := newTestCA(t, "h3body")
	p := startProxy(t, h3TLS(t, ca)+hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
  http3   = true
  timeouts {
    idle = "1s"
  }
}
http_route "app" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "http://%s" {}
}
`, be))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, p.addr("web"),
		&tls.Config{RootCAs: ca.pool(), ServerName: "t.test", NextProtos: []string{http3.NextProtoH3}},
		&quic.Config{HandshakeIdleTimeout: 10 * time.Second, MaxIdleTimeout: ioTimeout, KeepAlivePeriod: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := quicvarint.Append(nil, 0x00) // DATA
	data = quicvarint.Append(data, 1)
	data = append(data, 'x')
	if _, err := str.Write(append(h3HeadersFrame("t.test", "/up"), data...)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = str.SetReadDeadline(start.Add(10 * time.Second))
	status, err := h3Status(str)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("no answer to a stalled body after %v: %v", took, err)
	}
	if status != "408" || took > 6*time.Second {
		t.Errorf("stalled body answered %s after %v, want 408 after about 1s", status, took)
	}
	for deadline := time.Now().Add(5 * time.Second); ended.Load() < started.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if s, e := started.Load(), ended.Load(); e < s {
		t.Errorf("%d of %d backend requests still waiting for a body that was given up on", s-e, s)
	}
}
