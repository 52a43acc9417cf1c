//go:build linux

package integration

// A hostile HTTP/3 client: rapid reset over QUIC streams.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
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
}
