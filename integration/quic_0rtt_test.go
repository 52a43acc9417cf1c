//go:build linux

package integration

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	quic "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// TestHTTP3ZeroRTT: with allow_0rtt a resumed client's GET sent in early
// data reaches the backend with Early-Data: 1 and a POST in early data
// gets 425 (RFC 8470); without it no early data is accepted. A relay
// holds back the server's packets so the requests are surely handled
// before the client can complete the handshake.
func TestHTTP3ZeroRTT(t *testing.T) {
	ca := newTestCA(t, "h3")
	be := startHTTPBackend(t, "app")
	p := startProxy(t, h3TLS(t, ca)+hcl(`
entrypoint "early" {
  address    = "127.0.0.1:0"
  http3      = true
  allow_0rtt = true
}
entrypoint "strict" {
  address = "127.0.0.1:0"
  http3   = true
}
http_route "app" {
  entrypoints = ["early", "strict"]
  service     = "app"
}
service "app" {
  backend "http://%s" {}
}
`, be.addr))

	seenEarly := func(t *testing.T, uri string) (string, bool) {
		t.Helper()
		for _, r := range be.requests() {
			if r.URI == uri {
				return r.Header.Get("Early-Data"), true
			}
		}
		return "", false
	}

	for _, tc := range []struct {
		ep    string
		allow bool
	}{{"early", true}, {"strict", false}} {
		t.Run(tc.ep, func(t *testing.T) {
			tlsConf := &tls.Config{RootCAs: ca.pool(), ServerName: "t.test", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			// A first connection leaves a session ticket in the cache.
			first := &http3.Transport{TLSClientConfig: tlsConf}
			r := mustDo(t, &http.Client{Transport: first, Timeout: ioTimeout}, "https://"+p.addr(tc.ep), reqSpec{path: "/ticket"})
			first.Close()
			if r.status != 200 {
				t.Fatalf("first connection: %d", r.status)
			}

			relay := startUDPRelay(t, p.addr(tc.ep))
			relay.holdOut.Store(int64(500 * time.Millisecond))
			ctx := h3ctx(t)
			h3conf := tlsConf.Clone()
			h3conf.NextProtos = []string{http3.NextProtoH3}
			conn, err := quic.DialAddrEarly(ctx, relay.addr(), h3conf, &quic.Config{HandshakeIdleTimeout: 10 * time.Second})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer conn.CloseWithError(0, "")
			cc := (&http3.Transport{}).NewClientConn(conn)

			// POST in 0-RTT, on a raw request stream (quic-go's RoundTrip
			// waits for the handshake for anything but GET and HEAD), sent
			// before the GET whose answer the relay holds back.
			postURI := "/post-" + tc.ep
			str, err := cc.OpenRequestStream(ctx)
			if err != nil {
				t.Fatalf("open stream: %v", err)
			}
			preq, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://t.test"+postURI, nil)
			if err := str.SendRequestHeader(preq); err != nil {
				t.Fatalf("POST header: %v", err)
			}
			str.Close()
			// GET in 0-RTT.
			getURI := "/get-" + tc.ep
			req, _ := http.NewRequestWithContext(ctx, http3.MethodGet0RTT, "https://t.test"+getURI, nil)
			resp, err := cc.RoundTrip(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET: %d", resp.StatusCode)
			}

			presp, err := str.ReadResponse()
			if err != nil {
				t.Fatalf("POST response: %v", err)
			}
			io.Copy(io.Discard, presp.Body)
			presp.Body.Close()

			select {
			case <-conn.HandshakeComplete():
			case <-ctx.Done():
				t.Fatal("handshake never completed")
			}
			used := conn.ConnectionState().Used0RTT
			early, ok := seenEarly(t, getURI)
			_, postSeen := seenEarly(t, postURI)
			if tc.allow {
				if !used {
					t.Fatal("0-RTT was not accepted with allow_0rtt")
				}
				if !ok || early != "1" {
					t.Fatalf("backend saw the early GET: %v, Early-Data %q; want 1", ok, early)
				}
				if presp.StatusCode != http.StatusTooEarly || postSeen {
					t.Fatalf("POST in early data: %d (backend reached: %v), want 425", presp.StatusCode, postSeen)
				}
				return
			}
			if used {
				t.Fatal("0-RTT accepted without allow_0rtt")
			}
			if !ok || early != "" {
				t.Fatalf("backend saw the GET: %v, Early-Data %q; want none", ok, early)
			}
			if presp.StatusCode != 200 || !postSeen {
				t.Fatalf("POST after a full handshake: %d (backend reached: %v)", presp.StatusCode, postSeen)
			}
		})
	}
}
