package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// ppHeader formats a PROXY header of version 1 or 2 for a client at
// 192.0.2.1:4000 that connected to 192.0.2.2:80.
func ppHeader(t *testing.T, version byte) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version,
		&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 4000}, &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 80})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proxyHeadersCount reads proxynow_l4_proxy_protocol_headers_total.
func proxyHeadersCount(t *testing.T, s *Server, entrypoint, result string) float64 {
	t.Helper()
	fams, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "proxynow_l4_proxy_protocol_headers_total" {
			continue
		}
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["entrypoint"] == entrypoint && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestProxyHeaderRefusedOnHTTPEntrypoint: on an HTTP entrypoint with
// proxy_protocol, as on a TCP one, a PROXY header (v1 or v2) from a peer
// that is not trusted, and a malformed one from a trusted peer, close the
// connection without an answer and count as
// proxy_protocol_headers_total{result="refused"}; a plain request from an
// untrusted peer and a good header from a trusted one are served. The
// clients are real: go-proxyproto writes the headers, net/http or
// crypto/tls the rest.
func TestProxyHeaderRefusedOnHTTPEntrypoint(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	s := started(t, fmt.Sprintf(`
tls {
  certificate "t" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "untrusting" {
  address = "127.0.0.1:0"
  proxy_protocol {
    trusted = ["10.0.0.0/8"]
  }
}
entrypoint "trusting" {
  address = "127.0.0.1:0"
  proxy_protocol {
    trusted = ["127.0.0.0/8"]
  }
}
http_route "hello" {
  entrypoints = ["untrusting", "trusting"]
  service     = "hello"
}
service "hello" {
  respond {
    body = "hello"
  }
}
`, certFile, keyFile))
	const get = "GET / HTTP/1.1\r\nHost: t.test\r\n\r\n"
	// send writes head then an HTTP/1.1 GET (over TLS when tlsOn) and
	// returns the status line, or the error that ended the connection.
	send := func(ep string, head []byte, tlsOn bool) (string, error) {
		t.Helper()
		c, err := net.Dial("tcp", s.Addr(ep).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(head); err != nil {
			return "", err
		}
		var rw io.ReadWriter = c
		if tlsOn {
			tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "t.test"})
			if err := tc.Handshake(); err != nil {
				return "", err
			}
			rw = tc
		}
		if _, err := io.WriteString(rw, get); err != nil {
			return "", err
		}
		line, err := bufio.NewReader(rw).ReadString('\n')
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(line), nil
	}
	malformedV2 := append(ppHeader(t, 2)[:12:12], 0x2f) // version 2, command 15: no such command
	for _, tc := range []struct {
		name    string
		ep      string
		head    []byte
		tls     bool
		refused bool
	}{
		{name: "untrusted plain request", ep: "untrusting"},
		{name: "untrusted TLS request", ep: "untrusting", tls: true},
		{name: "untrusted v1", ep: "untrusting", head: ppHeader(t, 1), refused: true},
		{name: "untrusted v2", ep: "untrusting", head: ppHeader(t, 2), refused: true},
		{name: "untrusted v1 before TLS", ep: "untrusting", head: ppHeader(t, 1), tls: true, refused: true},
		{name: "untrusted v2 before TLS", ep: "untrusting", head: ppHeader(t, 2), tls: true, refused: true},
		{name: "trusted v1", ep: "trusting", head: ppHeader(t, 1)},
		{name: "trusted v2 before TLS", ep: "trusting", head: ppHeader(t, 2), tls: true},
		{name: "trusted malformed v1", ep: "trusting", head: []byte("PROXY TCP4 nonsense\r\n"), refused: true},
		{name: "trusted malformed v2", ep: "trusting", head: malformedV2, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := proxyHeadersCount(t, s, tc.ep, "refused")
			line, err := send(tc.ep, tc.head, tc.tls)
			after := proxyHeadersCount(t, s, tc.ep, "refused")
			if !tc.refused {
				if err != nil || line != "HTTP/1.1 200 OK" {
					t.Fatalf("got %q, %v; want HTTP/1.1 200 OK", line, err)
				}
				if after != before {
					t.Errorf("refused headers %v -> %v for a served request", before, after)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q; want the connection closed without an answer", line)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the connection was not closed: %v", err)
			}
			if after != before+1 {
				t.Errorf("proxy_protocol_headers_total{entrypoint=%q,result=\"refused\"} %v -> %v, want +1", tc.ep, before, after)
			}
		})
	}
	// A real net/http client through a trusted peer's v1 header (the
	// transport's dialer writes it first) is served.
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_, err = c.Write(ppHeader(t, 1))
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + s.Addr("trusting").String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("net/http through a trusted v1 header: %d", resp.StatusCode)
	}
}

// TestProxyHeaderCheckAcrossPeekTimeout: on an entrypoint that peeks for a
// ClientHello (tlsmux), a client not trusted for the PROXY protocol that
// pauses past the peek's deadline, with nothing or only the start of a
// PROXY signature sent, still has its header refused and counted once the
// rest comes (the check goes on in the tunnel); and bytes that only looked
// like a signature's start reach the backend whole.
func TestProxyHeaderCheckAcrossPeekTimeout(t *testing.T) {
	be := echoBackend(t)
	certFile, keyFile, _ := writeCert(t)
	s := started(t, fmt.Sprintf(`
tls {
  certificate "t" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "pp" {
  address = "127.0.0.1:0"
  proxy_protocol {
    trusted = ["10.0.0.0/8"]
  }
  timeouts {
    handshake = "100ms"
  }
}
tcp_route "tls" {
  entrypoints = ["pp"]
  sni         = ["a.test"]
  tls         = "passthrough"
  service     = "echo"
}
tcp_route "plain" {
  entrypoints = ["pp"]
  tls         = "none"
  service     = "echo"
}
service "echo" {
  backend %q {}
}
`, certFile, keyFile, be))
	const pause = 400 * time.Millisecond // past the 100ms peek deadline
	v1 := ppHeader(t, 1)
	for _, tc := range []struct {
		name          string
		first, second []byte
		refused       bool
	}{
		{name: "nothing, then a header", second: v1, refused: true},
		{name: "half a v1 signature, then the rest", first: v1[:3], second: v1[3:], refused: true},
		{name: "half a v2 signature, then the rest", first: ppHeader(t, 2)[:5], second: ppHeader(t, 2)[5:], refused: true},
		{name: "CRLF, then data", first: []byte("\r\n"), second: []byte("hello")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := proxyHeadersCount(t, s, "pp", "refused")
			c, err := net.Dial("tcp", s.Addr("pp").String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Write(tc.first)
			time.Sleep(pause)
			c.Write(tc.second)
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			after := proxyHeadersCount(t, s, "pp", "refused")
			if tc.refused {
				if len(got) > 0 || after != before+1 {
					t.Errorf("echoed %q (%v); refused %v -> %v; want nothing echoed and one refused", got, err, before, after)
				}
				return
			}
			if want := string(tc.first) + string(tc.second); string(got) != want || after != before {
				t.Errorf("echoed %q (%v), want %q; refused %v -> %v", got, err, want, before, after)
			}
		})
	}
}
